/**
 * Training end to end on a tiny learnable dataset (256 train / 128 test, test/helpers/tiny-data.ts)
 * with tiny models (MLP 784-32-16-10; ViT patch 7, dim 16, depth 1, 2 heads), one thread:
 * learning, determinism, --resume, refusal to overwrite a run, metrics files, atomic checkpoints,
 * --optimizer sgd on graphs built for adamw, --no-lj, and the per-step learning-rate schedule.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainRun } from '../../src/cli/train';
import { readCheckpoint } from '../../src/artifacts/checkpoint';
import { readOnnx, runMain, runOk, checkpointTensors, metricsNoTiming, listFiles } from '../cli/helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

const COLUMNS = ['epoch', 'lr', 'train_ce', 'train_lj', 'train_acc', 'test_loss', 'test_acc', 'max_test_acc', 'epoch_seconds', 'samples_per_s'];

interface Row {
  epoch: number;
  lr: number;
  train_ce: number;
  train_lj: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  max_test_acc: number;
  epoch_seconds: number;
  samples_per_s: number;
}

function metrics(run: string): Row[] {
  return fs
    .readFileSync(path.join(run, 'metrics.jsonl'), 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l));
}

function expectSameTensors(a: Map<string, Float32Array>, b: Map<string, Float32Array>, what: string): void {
  expect([...a.keys()], `${what}: parameter names`).to.deep.equal([...b.keys()]);
  for (const [k, v] of a) {
    const w = b.get(k)!;
    expect(v.length, `${what}: ${k} length`).to.equal(w.length);
    for (let i = 0; i < v.length; i++) if (v[i] !== w[i]) expect.fail(`${what}: ${k}[${i}] ${v[i]} vs ${w[i]}`);
  }
}

describe('train: end to end on tiny data', function () {
  this.timeout(120000);
  let root: string, data: string, mlp: string, vit: string;
  const common = () => ['--data', data, '--batch', '32', '--threads', '1', '--no-progress', '--lr', '0.01'];

  before(async function () {
    root = tempDir('ljtrain-train-');
    data = writeTinyFashionMnist({ dir: path.join(root, 'data') });
    mlp = path.join(root, 'g-mlp');
    vit = path.join(root, 'g-vit');
    await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '32,16', '--out', mlp]);
    await runOk(['build-graph', '--preset', 'vit-tiny-fmnist', '--dim', '16', '--depth', '1', '--heads', '2', '--patch', '7', '--out', vit]);
  });
  after(() => removeDir(root));

  it('MLP: the loss falls and test accuracy beats chance (3 epochs)', async function () {
    const run = path.join(root, 'r-learn');
    const r = await runOk(['train', mlp, '--run', run, '--epochs', '3', ...common()]);
    expect(r.stdout).to.match(/final test accuracy \d+\.\d\d%/);
    const m = metrics(run);
    expect(m.map((x) => x.epoch)).to.deep.equal([1, 2, 3]);
    expect(m[2].train_ce, 'train_ce falls').to.be.below(m[0].train_ce * 0.5);
    expect(m[2].test_loss, 'test loss falls').to.be.below(m[0].test_loss);
    expect(m[2].test_acc, 'test accuracy (chance 0.1)').to.be.above(0.5);
    expect(m[2].train_acc, 'train accuracy').to.be.above(0.5);
    expect(m[2].max_test_acc).to.equal(Math.max(...m.map((x) => x.test_acc)));
  });

  it('ViT: the loss falls and test accuracy beats chance (4 epochs, constant lr)', async function () {
    const run = path.join(root, 'r-vit');
    await runOk(['train', vit, '--run', run, '--epochs', '4', '--schedule', 'constant', ...common()]);
    const m = metrics(run);
    expect(m[3].train_ce, 'train_ce falls').to.be.below(m[0].train_ce - 0.3);
    expect(m[3].test_loss, 'test loss falls').to.be.below(m[0].test_loss - 0.3);
    expect(m[3].test_acc, 'test accuracy (chance 0.1)').to.be.above(0.3);
    expect(m[3].train_lj, 'LJ on tokens').to.be.above(0);
  });

  describe('a 2-epoch MLP baseline', function () {
    let base: string;
    const args = (run: string) => ['train', mlp, '--run', run, '--epochs', '2', ...common()];

    before(async function () {
      base = path.join(root, 'r-base');
      await runOk(args(base));
    });

    it('the same command twice gives identical metrics (timing aside) and identical parameters', async function () {
      const again = path.join(root, 'r-again');
      await runOk(args(again));
      expect(metricsNoTiming(again)).to.deep.equal(metricsNoTiming(base));
      expectSameTensors(checkpointTensors(path.join(again, 'last.ckpt')), checkpointTensors(path.join(base, 'last.ckpt')), 'last.ckpt');
    });

    it('stopped after epoch 1 and resumed with --resume, it ends with the same metrics and parameters as the uninterrupted run', async function () {
      const run = path.join(root, 'r-resume');
      const first = await trainRun(mlp, { run, data, epochs: 2, batch: 32, threads: 1, lr: 0.01, progress: false, quiet: true, stopAfterEpochs: 1 });
      expect(first.metrics.map((x) => x.epoch)).to.deep.equal([1]);
      expect(readCheckpoint(path.join(run, 'last.ckpt')).properties.ints['ljtrain.epoch']).to.equal(1);
      const r = await runOk(['train', mlp, '--run', run, '--resume', ...common()]);
      expect(r.stdout).to.match(/resuming .* at epoch 2/);
      expect(metricsNoTiming(run)).to.deep.equal(metricsNoTiming(base));
      expectSameTensors(checkpointTensors(path.join(run, 'last.ckpt')), checkpointTensors(path.join(base, 'last.ckpt')), 'resumed last.ckpt');
      const ck = readCheckpoint(path.join(run, 'last.ckpt'));
      const ckBase = readCheckpoint(path.join(base, 'last.ckpt'));
      expect(ck.optimizer!.step, 'optimizer step count').to.equal(ckBase.optimizer!.step);
      expect(ck.optimizer!.step).to.equal(16);
      for (let i = 0; i < ck.optimizer!.states.length; i++) {
        for (let k = 0; k < 2; k++) {
          expect(Array.from(ck.optimizer!.states[i].momentums[k].data), `moment ${k} of ${ck.optimizer!.states[i].paramName}`).to.deep.equal(Array.from(ckBase.optimizer!.states[i].momentums[k].data));
        }
      }
    });

    it('a second train into an existing run folder without --resume/--force is refused, and the run is untouched', async function () {
      const before = fs.readFileSync(path.join(base, 'last.ckpt'));
      const csv = fs.readFileSync(path.join(base, 'metrics.csv'), 'utf8');
      const r = await runMain(args(base));
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.include(base).and.to.include('already holds a run').and.to.include('--resume').and.to.include('--force');
      expect(fs.readFileSync(path.join(base, 'last.ckpt')).equals(before), 'last.ckpt unchanged').to.equal(true);
      expect(fs.readFileSync(path.join(base, 'metrics.csv'), 'utf8')).to.equal(csv);
    });

    it('--force starts over and reproduces the run', async function () {
      const run = path.join(root, 'r-force');
      await runOk(['train', mlp, '--run', run, '--epochs', '1', ...common()]);
      await runOk([...args(run), '--force']);
      expect(metricsNoTiming(run)).to.deep.equal(metricsNoTiming(base));
    });

    it('metrics.csv and metrics.jsonl have the documented columns, one row per epoch', function () {
      const lines = fs.readFileSync(path.join(base, 'metrics.csv'), 'utf8').trim().split('\n');
      expect(lines[0].split(',')).to.deep.equal(COLUMNS);
      expect(lines).to.have.length(3);
      const rows = metrics(base);
      expect(rows).to.have.length(2);
      rows.forEach((row, i) => {
        expect(Object.keys(row).sort()).to.deep.equal([...COLUMNS].sort());
        for (const c of COLUMNS) expect(Number.isFinite(row[c as keyof Row]), `${c} finite`).to.equal(true);
        const csvRow = lines[i + 1].split(',').map(Number);
        expect(csvRow, `csv row ${i + 1} = jsonl row`).to.deep.equal(COLUMNS.map((c) => row[c as keyof Row]));
        expect(row.epoch).to.equal(i + 1);
        expect(row.train_acc).to.be.within(0, 1);
        expect(row.test_acc).to.be.within(0, 1);
        expect(row.epoch_seconds).to.be.above(0);
        expect(row.samples_per_s).to.be.above(0);
      });
    });

    it('leaves no temporary files in the graphs or run folders', function () {
      for (const d of [mlp, base, path.join(root, 'r-resume'), path.join(root, 'r-force')]) {
        expect(listFiles(d).filter((f) => f.includes('.tmp')), d).to.deep.equal([]);
      }
      expect(listFiles(base).sort()).to.deep.equal(['best.ckpt', 'eval.onnx', 'last.ckpt', 'metrics.csv', 'metrics.jsonl', 'run-config.json', 'train_step.onnx']);
    });
  });

  it('checkpoints are written atomically: a temp file renamed over last.ckpt / best.ckpt, never written in place', async function () {
    const fsMod = require('node:fs') as typeof fs;
    const run = path.join(root, 'r-atomic');
    const direct: string[] = [];
    const renames: [string, string][] = [];
    const orig = { writeFileSync: fsMod.writeFileSync, openSync: fsMod.openSync, renameSync: fsMod.renameSync, createWriteStream: fsMod.createWriteStream };
    const isFinal = (p: unknown) => typeof p === 'string' && /(last|best)\.ckpt$/.test(p);
    fsMod.writeFileSync = function (this: unknown, p: fs.PathOrFileDescriptor, ...rest: unknown[]) {
      if (isFinal(p)) direct.push(`writeFileSync ${String(p)}`);
      return (orig.writeFileSync as (...a: unknown[]) => void).call(this, p, ...rest);
    } as typeof fs.writeFileSync;
    fsMod.openSync = function (this: unknown, p: fs.PathLike, ...rest: unknown[]) {
      if (isFinal(p) && rest[0] !== undefined && rest[0] !== 'r') direct.push(`openSync ${String(p)} ${String(rest[0])}`);
      return (orig.openSync as (...a: unknown[]) => number).call(this, p, ...rest);
    } as typeof fs.openSync;
    fsMod.renameSync = function (this: unknown, a: fs.PathLike, b: fs.PathLike) {
      renames.push([String(a), String(b)]);
      return orig.renameSync.call(this, a, b);
    } as typeof fs.renameSync;
    fsMod.createWriteStream = function (this: unknown, p: fs.PathLike, ...rest: unknown[]) {
      if (isFinal(p)) direct.push(`createWriteStream ${String(p)}`);
      return (orig.createWriteStream as (...a: unknown[]) => fs.WriteStream).call(this, p, ...rest);
    } as typeof fs.createWriteStream;
    try {
      await trainRun(mlp, { run, data, epochs: 2, batch: 32, threads: 1, lr: 0.01, progress: false, quiet: true });
    } finally {
      Object.assign(fsMod, orig);
    }
    expect(direct, 'checkpoint files opened for writing in place').to.deep.equal([]);
    for (const f of ['last.ckpt', 'best.ckpt']) {
      const into = renames.filter(([, to]) => path.resolve(to) === path.resolve(run, f));
      expect(into.length, `renames onto ${f}`).to.be.at.least(1);
      for (const [from] of into) {
        expect(path.dirname(path.resolve(from)), `${f} temp file is in the run folder (same filesystem)`).to.equal(path.resolve(run));
        expect(path.basename(from)).to.include('.tmp');
      }
    }
    expect(listFiles(run).filter((f) => f.includes('.tmp'))).to.deep.equal([]);
  });

  it('--optimizer sgd on graphs built for adamw rebuilds the train step, and the loss falls', async function () {
    const run = path.join(root, 'r-sgd');
    const r = await runOk(['train', mlp, '--run', run, '--epochs', '3', ...common(), '--optimizer', 'sgd', '--lr', '0.05', '--momentum', '0.9']);
    expect(r.stdout).to.include('rebuilding the train step for --optimizer sgd');
    const ts = readOnnx(path.join(run, 'train_step.onnx'));
    const inputs = (ts.graph!.input ?? []).map((v) => v.name!);
    expect(inputs).to.include('momentum').and.to.include('opt.momentum.fc1.weight');
    expect(inputs).to.not.include('beta1');
    expect(inputs.some((n) => n.startsWith('opt.m.'))).to.equal(false);
    const m = metrics(run);
    expect(m[2].train_ce).to.be.below(m[0].train_ce * 0.7);
    expect(m[2].test_acc).to.be.above(0.3);
    const ck = readCheckpoint(path.join(run, 'last.ckpt'));
    expect(ck.properties.strings['ljtrain.optimizer']).to.equal('sgd');
    expect(ck.optimizer!.states[0].momentums.map((x) => x.name)).to.deep.equal(['momentum0']);
    // The graphs folder still holds the adamw train step.
    const orig = readOnnx(path.join(mlp, 'train_step.onnx'));
    expect((orig.graph!.input ?? []).map((v) => v.name!)).to.include('beta1');
  });

  it('--no-lj builds graphs without any lj/ node and trains with train_lj = 0; with LJ, train_lj > 0', async function () {
    const g = path.join(root, 'g-nolj');
    await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '32,16', '--no-lj', '--out', g]);
    for (const f of ['train_step.onnx', 'eval.onnx']) {
      const names = (readOnnx(path.join(g, f)).graph!.node ?? []).map((n) => n.name!);
      expect(names.length).to.be.above(10);
      expect(names.filter((n) => n.includes('lj/') || n.startsWith('lj')), `${f} lj nodes`).to.deep.equal([]);
    }
    const withLj = (readOnnx(path.join(mlp, 'train_step.onnx')).graph!.node ?? []).map((n) => n.name!);
    expect(withLj.filter((n) => n.startsWith('lj/')).length, 'the LJ graph has lj/ nodes').to.be.above(5);
    const manifest = JSON.parse(fs.readFileSync(path.join(g, 'manifest.json'), 'utf8'));
    expect(manifest.config.lj.enabled).to.equal(false);

    const run = path.join(root, 'r-nolj');
    await runOk(['train', g, '--run', run, '--epochs', '2', ...common()]);
    const m = metrics(run);
    for (const row of m) expect(row.train_lj, `epoch ${row.epoch} train_lj`).to.equal(0);
    expect(m[1].train_ce).to.be.below(m[0].train_ce);
    for (const row of metrics(path.join(root, 'r-learn'))) expect(row.train_lj, `LJ run epoch ${row.epoch}`).to.be.above(0);
  });

  it('the lr schedule is fed each step: constant keeps --lr, cosine decays within and across epochs', async function () {
    const steps = 256 / 32;
    const c = path.join(root, 'r-const');
    const k = path.join(root, 'r-cos');
    await runOk(['train', mlp, '--run', c, '--epochs', '3', ...common(), '--schedule', 'constant']);
    await runOk(['train', mlp, '--run', k, '--epochs', '3', ...common(), '--schedule', 'cosine', '--min-lr', '0.0001']);
    for (const row of metrics(c)) expect(row.lr, `constant epoch ${row.epoch}`).to.equal(0.01);
    // The logged lr is the last step's: epoch e ends at position (e-1) + (steps-1)/steps of a 3-epoch cosine.
    const cos = (pos: number) => 1e-4 + (0.01 - 1e-4) * 0.5 * (1 + Math.cos((Math.PI * pos) / 3));
    const rows = metrics(k);
    rows.forEach((row, i) => expect(row.lr, `cosine epoch ${row.epoch}`).to.be.closeTo(cos(i + (steps - 1) / steps), 1e-12));
    expect(rows[0].lr, 'decays within the first epoch').to.be.below(0.01);
    expect(rows[1].lr).to.be.below(rows[0].lr);
    expect(rows[2].lr).to.be.below(rows[1].lr);
    // The first step is identical (lr 0.01 in both), later steps are not: the parameters differ.
    const pc = checkpointTensors(path.join(c, 'last.ckpt'));
    const pk = checkpointTensors(path.join(k, 'last.ckpt'));
    let diff = 0;
    for (const [n, v] of pc) for (let i = 0; i < v.length; i++) diff = Math.max(diff, Math.abs(v[i] - pk.get(n)![i]));
    expect(diff, 'constant vs cosine parameters').to.be.above(1e-4);
  });
});
