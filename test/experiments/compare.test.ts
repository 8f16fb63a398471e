import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readCheckpoint } from '../../src/artifacts/checkpoint';
import { readManifest } from '../../src/artifacts/manifest';
import { CompareOptions, runCompare } from '../../src/experiments/compare';
import { assertSameInitialState } from '../../src/experiments/arms';
import { readMetrics } from '../../src/train/metrics';
import { loadTrainState } from '../../src/train/state';
import { cli, tinyFashionMnist, tmpDir } from './helpers';

function initialParams(graphs: string): Map<string, Float32Array> {
  const m = readManifest(graphs);
  const s = loadTrainState(path.join(graphs, 'initial.ckpt'), m.params, new Map()).state;
  return new Map([...s.params].map(([k, v]) => [k, v.data]));
}

const rngOf = (run: string) => readCheckpoint(path.join(run, 'last.ckpt')).properties.strings['ljtrain.rng'];

async function rejects(p: Promise<unknown>): Promise<Error> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('experiments/compare', function () {
  let data: string, root: string;
  const logs: string[] = [];
  const opts = (out: string, more: Partial<CompareOptions> = {}): CompareOptions => ({
    preset: 'mlp-fmnist', hidden: [16], epochs: 2, data, threads: 1, quiet: true, progress: false, out, log: (l) => logs.push(l), ...more,
  });
  before(() => {
    data = tinyFashionMnist();
    root = tmpDir('compare');
  });
  after(() => {
    fs.rmSync(data, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  describe('two seeds', () => {
    let out: string;
    let r: Awaited<ReturnType<typeof runCompare>>;
    before(async () => {
      out = path.join(root, 'two-seeds');
      r = await runCompare(opts(out, { seeds: [1, 2] }));
    });

    it('trains a baseline and an LJ arm per seed', () => {
      expect(r.complete).to.equal(true);
      expect(r.outcomes.map((o) => `${o.arm.name}:${o.action}`)).to.deep.equal(['baseline-s1:trained', 'lj-s1:trained', 'baseline-s2:trained', 'lj-s2:trained']);
      for (const o of r.outcomes) expect(o.metrics.map((m) => m.epoch)).to.deep.equal([1, 2]);
      const lj = readMetrics(path.join(out, 'runs', 'lj-s1')), base = readMetrics(path.join(out, 'runs', 'baseline-s1'));
      expect(base.every((m) => m.train_lj === 0)).to.equal(true);
      expect(lj.every((m) => m.train_lj > 0)).to.equal(true);
    });

    it('gives both arms of a seed identical initial parameters, and other seeds other ones', () => {
      const a = initialParams(path.join(out, 'graphs', 'baseline-s1'));
      const b = initialParams(path.join(out, 'graphs', 'lj-s1'));
      const c = initialParams(path.join(out, 'graphs', 'baseline-s2'));
      expect([...a.keys()]).to.deep.equal([...b.keys()]);
      expect(a.size).to.be.greaterThan(0);
      for (const [k, v] of a) expect(Buffer.from(b.get(k)!.buffer).equals(Buffer.from(v.buffer)), k).to.equal(true);
      expect([...a].some(([k, v]) => !Buffer.from(c.get(k)!.buffer).equals(Buffer.from(v.buffer)))).to.equal(true);
      expect(() => assertSameInitialState(path.join(out, 'graphs', 'baseline-s2'), path.join(out, 'graphs', 'lj-s2'))).not.to.throw();
      expect(() => assertSameInitialState(path.join(out, 'graphs', 'baseline-s1'), path.join(out, 'graphs', 'lj-s2'))).to.throw(/differs/);
    });

    it('uses the seed for both data order and initialisation, the same in both arms', () => {
      for (const [arm, seed] of [['baseline-s1', 1], ['lj-s1', 1], ['lj-s2', 2]] as const) {
        const rc = JSON.parse(fs.readFileSync(path.join(out, 'runs', arm, 'run-config.json'), 'utf8'));
        expect([rc.initSeed, rc.train.seed], arm).to.deep.equal([seed, seed]);
      }
      // the data-order RNG after training: same in both arms of a seed (same shuffles), not across seeds
      expect(rngOf(path.join(out, 'runs', 'baseline-s1'))).to.equal(rngOf(path.join(out, 'runs', 'lj-s1')));
      expect(rngOf(path.join(out, 'runs', 'baseline-s1'))).not.to.equal(rngOf(path.join(out, 'runs', 'baseline-s2')));
    });

    it("writes the paper-style table as Markdown and CSV, with mean ± std, differences, Δt and the verdict rule", () => {
      const md = fs.readFileSync(path.join(out, 'table.md'), 'utf8');
      expect(md).to.equal(r.markdown);
      const lines = md.split('\n');
      expect(lines).to.include('| Arm | Train Acc | Test Acc | Max Test Acc | Δt |');
      const base = lines.find((l) => l.startsWith('| baseline |'))!;
      expect(base).to.match(/^\| baseline \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \| \d+\.\d\d ± \d+\.\d\d \| — \|$/);
      const lj = lines.find((l) => l.startsWith('| LJ (σ=0.5, n=6, ε=0.1) |'))!;
      expect(lj).to.match(/^\| LJ \(σ=0\.5, n=6, ε=0\.1\) \|( \d+\.\d\d ± \d+\.\d\d \([+-]\d+\.\d\d\) \|){3} -?\d+\.\d\d% ± \d+\.\d\d \|$/);
      expect(lines.find((l) => l.startsWith('| difference exceeds seed spread? |'))).to.match(/(yes|no) \(\d+\.\d\d [>≤] \d+\.\d\d; t = /);
      expect(md).to.contain('sqrt(std_base² + std_LJ²)');
      expect(md).to.contain('paired t-statistic');
      expect(md).to.contain('seed s sets both the data-order/flip seed and the initialisation seed');
      // the LJ cell's difference is LJ − baseline of the per-seed test accuracies
      const accs = (arm: string) => [1, 2].map((s) => 100 * readMetrics(path.join(out, 'runs', `${arm}-s${s}`))[1].test_acc);
      const diff = (accs('lj')[0] + accs('lj')[1] - accs('baseline')[0] - accs('baseline')[1]) / 2;
      expect(r.summary!.metrics.test_acc.diff).to.be.closeTo(diff, 1e-9);

      const csv = fs.readFileSync(path.join(out, 'table.csv'), 'utf8').trim().split('\n');
      expect(csv).to.have.length(3);
      const head = csv[0].split(',');
      for (const c of ['arm', 'seeds', 'train_acc', 'test_acc', 'test_acc_std', 'test_acc_diff', 'test_acc_exceeds_spread', 'test_acc_paired_t', 'max_test_acc', 'dt_pct']) expect(head).to.include(c);
      const row = csv[2].split(',');
      expect(row[head.indexOf('arm')]).to.equal('lj');
      expect(Number(row[head.indexOf('test_acc_diff')])).to.be.closeTo(diff, 1e-5);
      expect(fs.readFileSync(path.join(out, 'runs.csv'), 'utf8').trim().split('\n')).to.have.length(5);
    });

    it('writes curves.svg and curves.png with both arms', () => {
      const svg = fs.readFileSync(path.join(out, 'curves.svg'), 'utf8');
      expect(svg.startsWith('<svg')).to.equal(true);
      for (const t of ['baseline', 'LJ (σ=0.5, n=6, ε=0.1)', 'test accuracy (%)', 'train loss (cross-entropy)', 'epoch']) expect(svg).to.contain(t);
      const png = fs.readFileSync(path.join(out, 'curves.png'));
      expect(png.subarray(0, 8).equals(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]))).to.equal(true);
      expect(png.readUInt32BE(16)).to.be.greaterThan(800); // IHDR width, 2x scale
    });

    it('does not rerun finished arms when called again, and writes the same table', async () => {
      const before = fs.readFileSync(path.join(out, 'runs', 'lj-s2', 'metrics.csv'), 'utf8');
      const again = await runCompare(opts(out, { seeds: [1, 2] }));
      expect(again.outcomes.map((o) => o.action)).to.deep.equal(['skipped', 'skipped', 'skipped', 'skipped']);
      expect(fs.readFileSync(path.join(out, 'runs', 'lj-s2', 'metrics.csv'), 'utf8')).to.equal(before);
      expect(again.markdown).to.equal(r.markdown);
    });

    it('resumes an interrupted compare: a partly trained arm from its checkpoint, the same numbers as without the interruption', async () => {
      const out2 = path.join(root, 'interrupted');
      logs.length = 0;
      const first = await runCompare(opts(out2, { seeds: [1], stopAfterEpochs: 1 }));
      expect(first.complete).to.equal(false);
      expect(first.outcomes.map((o) => `${o.arm.name}:${o.metrics.length}`)).to.deep.equal(['baseline-s1:1']);
      expect(fs.existsSync(path.join(out2, 'table.md'))).to.equal(false);
      expect(fs.existsSync(path.join(out2, 'runs', 'lj-s1'))).to.equal(false);
      const epoch1 = fs.readFileSync(path.join(out2, 'runs', 'baseline-s1', 'metrics.jsonl'), 'utf8');

      const second = await runCompare(opts(out2, { seeds: [1] }));
      expect(second.complete).to.equal(true);
      expect(second.outcomes.map((o) => `${o.arm.name}:${o.action}`)).to.deep.equal(['baseline-s1:resumed', 'lj-s1:trained']);
      expect(logs.some((l) => /\[baseline-s1\] resuming from epoch 2 of 2/.test(l))).to.equal(true);
      // epoch 1 was not retrained
      expect(fs.readFileSync(path.join(out2, 'runs', 'baseline-s1', 'metrics.jsonl'), 'utf8').startsWith(epoch1)).to.equal(true);
      // and the resumed arm ends where the uninterrupted one (seed 1 of the two-seed compare) did
      const key = (m: ReturnType<typeof readMetrics>[number]) => [m.epoch, m.train_acc, m.test_acc, m.train_ce.toFixed(6), m.test_loss.toFixed(6)];
      for (const arm of ['baseline-s1', 'lj-s1']) {
        expect(readMetrics(path.join(out2, 'runs', arm)).map(key), arm).to.deep.equal(readMetrics(path.join(out, 'runs', arm)).map(key));
      }
    });
  });

  describe('bad input', () => {
    it('refuses an --out folder that holds a different compare, naming what differs (other seeds are fine); --force starts over', async () => {
      const out = path.join(root, 'refuse');
      await runCompare(opts(out, { epochs: 1 }));
      const e = await rejects(runCompare(opts(out, { epochs: 1, sigma: 1 })));
      expect(e.name).to.equal('UserError');
      expect(e.message).to.match(/already holds a different compare experiment \(config\.lj\.sigma: 0\.5 -> 1\).*--force/);
      expect((await rejects(runCompare(opts(out, { epochs: 2 })))).message).to.contain('config.train.epochs: 1 -> 2');
      // other seeds are the same experiment repeated: finished seeds are reused, new ones trained
      const more = await runCompare(opts(out, { epochs: 1, seeds: [1, 2] }));
      expect(more.outcomes.map((o) => `${o.arm.name}:${o.action}`)).to.deep.equal(['baseline-s1:skipped', 'lj-s1:skipped', 'baseline-s2:trained', 'lj-s2:trained']);
      expect(JSON.parse(fs.readFileSync(path.join(out, 'compare.json'), 'utf8')).seeds).to.deep.equal([1, 2]);
      const forced = await runCompare(opts(out, { epochs: 1, sigma: 1, force: true }));
      expect(forced.outcomes.map((o) => o.action)).to.deep.equal(['trained', 'trained']);
      expect(JSON.parse(fs.readFileSync(path.join(out, 'compare.json'), 'utf8')).config.lj.sigma).to.equal(1);
      expect(forced.markdown).to.contain('LJ (σ=1, n=6, ε=0.1)');
    });

    it('refuses a folder of other files or of a sweep', async () => {
      const other = path.join(root, 'other');
      fs.mkdirSync(other);
      fs.writeFileSync(path.join(other, 'notes.txt'), 'mine');
      expect((await rejects(runCompare(opts(other)))).message).to.match(/is not empty and holds no compare\.json/);
      const sweep = path.join(root, 'a-sweep');
      fs.mkdirSync(sweep);
      fs.writeFileSync(path.join(sweep, 'sweep.json'), '{}');
      expect((await rejects(runCompare(opts(sweep)))).message).to.match(/holds a sweep experiment/);
      fs.writeFileSync(path.join(root, 'a-file'), 'x');
      expect((await rejects(runCompare(opts(path.join(root, 'a-file'))))).message).to.match(/is a file, not a folder/);
    });

    it('unknown preset: one clear line, exit code 1', async () => {
      const r = await cli(['compare', '--preset', 'nope', '--out', path.join(root, 'nope')]);
      expect(r.code).to.equal(1);
      expect(r.err.trim().split('\n')).to.have.length(1);
      expect(r.err).to.match(/^ljtrain: unknown preset 'nope' \(known: .*mlp-fmnist/);
      expect(fs.existsSync(path.join(root, 'nope'))).to.equal(false);
    });

    it('a seed list that does not parse: an error naming --seeds', async () => {
      for (const bad of ['1,x', '1,,2', '0', '1.5', '1,1']) {
        const r = await cli(['compare', '--preset', 'mlp-fmnist', '--seeds', bad, '--out', path.join(root, 'bad-seeds')]);
        expect(r.code, bad).to.equal(1);
        expect(r.err, bad).to.contain('--seeds');
        expect(r.err.trim().split('\n'), bad).to.have.length(1);
      }
      const both = await cli(['compare', '--preset', 'mlp-fmnist', '--seeds', '1,2', '--seed', '3', '--out', path.join(root, 'bad-seeds')]);
      expect(both.err).to.match(/either --seeds .* or --seed/);
      expect(fs.existsSync(path.join(root, 'bad-seeds'))).to.equal(false);
    });

    it('a missing data folder fails before anything is written', async () => {
      const out = path.join(root, 'no-data');
      const e = await rejects(runCompare(opts(out, { data: path.join(root, 'missing') })));
      expect(e.message).to.match(/Fashion-MNIST folder not found/);
      expect(fs.existsSync(out)).to.equal(false);
    });
  });

  it('prints the table from the CLI', async () => {
    const out = path.join(root, 'cli');
    const r = await cli(['compare', '--preset', 'mlp-fmnist', '--hidden', '8', '--epochs', '1', '--data', data, '--threads', '1', '--out', out, '--quiet']);
    expect(r.code, r.err).to.equal(0);
    expect(r.out).to.contain('## compare: mlp-fmnist');
    expect(r.out).to.match(/\| LJ \(σ=0\.5, n=6, ε=0\.1\) \| \d+\.\d\d \([+-]\d+\.\d\d\) \|/);
    expect(r.out).to.contain('With one seed there is no spread');
  });
});
