/**
 * The ORT training path end to end through the CLI, on tiny data (256 train / 128 test) and tiny
 * models (MLP 784-32-16-10; ViT patch 7, dim 16, depth 1, 2 heads):
 * build-graph --format ort|both (+ --freeze), train --backend ort-training (metrics, ODTC
 * checkpoints, the lr and its schedule taking effect, agreement with the native backend, a killed
 * and resumed run ending exactly like an uninterrupted one), SGD support and refusal, and export of
 * ORT runs and of bare checkpoints (+ eval model).
 */
import { expect } from 'chai';
import { spawn } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { ARTIFACT_FILES } from '../../src/artifacts/ort-artifacts';
import { ORT_PROPS, gradientOutputName } from '../../src/artifacts/ort-build';
import { Checkpoint, emptyProperties, readCheckpoint, writeCheckpoint } from '../../src/artifacts/checkpoint';
import { sha256 } from '../../src/artifacts/manifest';
import { trainRun } from '../../src/cli/train';
import { createSession, tensor } from '../../src/runtime/session';
import { CLI_JS, checkpointTensors, listFiles, metricsNoTiming, readOnnx, runMain, runOk } from '../cli/helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

const MLP = ['--preset', 'mlp-fmnist', '--hidden', '32,16'];
const VIT = ['--preset', 'vit-tiny-fmnist', '--dim', '16', '--depth', '1', '--heads', '2', '--patch', '7'];

function maxDiff(a: Map<string, Float32Array>, b: Map<string, Float32Array>): number {
  expect([...a.keys()].sort()).to.deep.equal([...b.keys()].sort());
  let d = 0;
  for (const [k, v] of a) {
    const w = b.get(k)!;
    for (let i = 0; i < v.length; i++) d = Math.max(d, Math.abs(v[i] - w[i]));
  }
  return d;
}

describe('ORT training artifacts and --backend ort-training through the CLI', function () {
  this.timeout(300000);
  let root: string, data: string, both: string, ortMlp: string, ortVit: string, noLj: string;
  const common = () => ['--data', data, '--batch', '32', '--no-progress'];

  before(async () => {
    root = tempDir('ljtrain-ort-cli-');
    data = writeTinyFashionMnist({ dir: path.join(root, 'data') });
    both = path.join(root, 'g-both');
    ortMlp = path.join(root, 'g-ort');
    ortVit = path.join(root, 'g-vit');
    noLj = path.join(root, 'g-nolj');
    await runOk(['build-graph', ...MLP, '--format', 'both', '--out', both]);
    await runOk(['build-graph', ...MLP, '--format', 'both', '--no-lj', '--out', noLj]);
    await runOk(['build-graph', ...MLP, '--format', 'ort', '--out', ortMlp]);
    await runOk(['build-graph', ...VIT, '--format', 'ort', '--out', ortVit, '--freeze', 'patch_embed.*']);
  });
  after(() => removeDir(root));

  describe('build-graph --format', () => {
    it('both: native and ORT files, all in the manifest with their sha256; same initial parameters', () => {
      const m = JSON.parse(fs.readFileSync(path.join(both, 'manifest.json'), 'utf8'));
      const files = ['train_step.onnx', 'eval.onnx', 'initial.ckpt', ...Object.values(ARTIFACT_FILES)];
      expect(Object.keys(m.files).sort()).to.deep.equal([...files].sort());
      for (const f of files) expect(m.files[f], f).to.equal(sha256(path.join(both, f)));
      expect(maxDiff(checkpointTensors(path.join(both, 'initial.ckpt')), checkpointTensors(path.join(both, 'checkpoint')))).to.equal(0);
    });

    it('ort: the documented layout; the config in the checkpoint property bag; native files absent', () => {
      expect(listFiles(ortMlp).sort()).to.deep.equal(['checkpoint', 'eval_model.onnx', 'manifest.json', 'optimizer_model.onnx', 'training_model.onnx']);
      const tm = readOnnx(path.join(ortMlp, 'training_model.onnx')).graph!;
      const ck = readCheckpoint(path.join(ortMlp, 'checkpoint'));
      const params = ck.requiresGradParams.map((t) => t.name);
      expect(params).to.have.length(6);
      const ins = tm.input!.map((i) => i.name);
      expect(ins.slice(0, 2)).to.deep.equal(['input', 'labels']);
      expect(ins.slice(2, 8)).to.deep.equal(params);
      expect(ins.slice(8, 14)).to.deep.equal(params.map((p) => `${p}_grad.accumulation.buffer`));
      expect(ins[14]).to.equal('lazy_reset_grad');
      const outs = tm.output!.map((o) => o.name);
      expect(outs.slice(0, 5)).to.deep.equal(['loss', 'ce_loss', 'lj_loss', 'correct', 'logits']);
      expect(outs.slice(5, 11)).to.deep.equal(params.map(gradientOutputName));
      expect(outs.slice(11)).to.deep.equal(params.map((p) => `${p}_grad.accumulation.out`));
      const em = readOnnx(path.join(ortMlp, 'eval_model.onnx')).graph!;
      expect(em.output!.map((o) => o.name)).to.deep.equal(['loss', 'ce_loss', 'lj_loss', 'correct', 'logits']);
      expect(em.node!.some((n) => n.domain === 'com.microsoft')).to.equal(false);
      const om = readOnnx(path.join(ortMlp, 'optimizer_model.onnx')).graph!;
      // The preset's lr is 0.001, what onnxruntime-web feeds: no scaling node.
      expect(om.node!.map((n) => n.opType)).to.deep.equal(['AdamWOptimizer']);
      const cfg = JSON.parse(ck.properties.strings['ljtrain.config']);
      expect(cfg.model.hidden).to.deep.equal([32, 16]);
      expect(cfg.lj.enabled).to.equal(true);
      expect(JSON.parse(ck.properties.strings[ORT_PROPS.trainingModel])).to.deep.equal({ optimizer: 'adamw', gradientOutputs: true, sgdWeightDecay: 0 });
      expect(ck.optimizer!.step).to.equal(0);
      expect(ck.optimizer!.states.map((s) => s.momentums.map((x) => x.name))).to.deep.equal(params.map(() => ['momentum0', 'momentum1']));
    });

    it('--freeze: frozen parameters go to frozen_params, without gradient buffers, accumulators or optimizer state', () => {
      const ck = readCheckpoint(path.join(ortVit, 'checkpoint'));
      expect(ck.frozenParams.map((t) => t.name)).to.deep.equal(['patch_embed.weight', 'patch_embed.bias']);
      expect(ck.requiresGradParams.map((t) => t.name)).to.not.include('patch_embed.weight');
      expect(ck.optimizer!.states.map((s) => s.paramName)).to.not.include('patch_embed.weight');
      const tm = readOnnx(path.join(ortVit, 'training_model.onnx')).graph!;
      const names = [...tm.input!.map((i) => i.name!), ...tm.output!.map((o) => o.name!)];
      expect(names).to.include('patch_embed.weight');
      expect(names.filter((n) => n.startsWith('patch_embed.') && n !== 'patch_embed.weight' && n !== 'patch_embed.bias')).to.deep.equal([]);
    });

    it('--freeze errors: a pattern that matches nothing, everything, a bad regex, or the native format', async () => {
      const cases: [string[], RegExp][] = [
        [['--format', 'ort', '--freeze', 'nope.*'], /--freeze 'nope\.\*' matches no parameter .*parameters: fc1\.weight/],
        [['--format', 'ort', '--freeze', '*'], /freezes every parameter/],
        [['--format', 'ort', '--freeze', '/fc[/'], /invalid --freeze regex/],
        [['--format', 'both', '--freeze', 'fc1.*'], /--freeze applies to the ORT training artifacts only/],
        [['--freeze', 'fc1.*'], /--freeze applies to the ORT training artifacts only/],
      ];
      for (const [args, re] of cases) {
        const out = path.join(root, 'g-bad');
        const r = await runMain(['build-graph', ...MLP, '--out', out, ...args]);
        expect(r.code, args.join(' ')).to.equal(1);
        expect(r.stderr.trim().split('\n'), args.join(' ')).to.have.length(1);
        expect(r.stderr, args.join(' ')).to.match(re);
        expect(fs.existsSync(path.join(out, 'manifest.json'))).to.equal(false);
      }
      // A regex form that works: /^fc1\./ freezes fc1.weight and fc1.bias.
      const out = path.join(root, 'g-re');
      await runOk(['build-graph', ...MLP, '--out', out, '--format', 'ort', '--freeze', '/^fc1\\./']);
      expect(readCheckpoint(path.join(out, 'checkpoint')).frozenParams.map((t) => t.name)).to.deep.equal(['fc1.weight', 'fc1.bias']);
    });
  });

  describe('train --backend ort-training', () => {
    let base: string;
    const args = (run: string, extra: string[] = []) => ['train', ortMlp, '--backend', 'ort-training', '--run', run, '--epochs', '3', '--lr', '0.01', ...common(), ...extra];
    before(async () => {
      base = path.join(root, 'r-ort');
      await runOk(args(base));
    });

    it('writes the same metrics files, ODTC checkpoints and run folder layout as the native backend; learns', () => {
      expect(listFiles(base).sort()).to.deep.equal(['best.ckpt', 'eval_model.onnx', 'last.ckpt', 'metrics.csv', 'metrics.jsonl', 'optimizer_model.onnx', 'run-config.json', 'training_model.onnx']);
      const m = metricsNoTiming(base);
      expect(m.map((r) => r.epoch)).to.deep.equal([1, 2, 3]);
      expect(m[2].train_ce).to.be.below(m[0].train_ce);
      expect(m[2].test_acc).to.be.above(0.3);
      const ck = readCheckpoint(path.join(base, 'last.ckpt'));
      expect(ck.optimizer!.step).to.equal(24);
      expect(ck.properties.ints['ljtrain.epoch']).to.equal(3);
      expect(JSON.parse(fs.readFileSync(path.join(base, 'run-config.json'), 'utf8')).backend).to.equal('ort-training');
      // The run's optimizer model carries the cosine schedule as a 24-entry table.
      const om = readOnnx(path.join(base, 'optimizer_model.onnx')).graph!;
      expect(om.initializer!.find((t) => t.name === 'lr_table')!.dims!.map(Number)).to.deep.equal([24]);
    });

    it('matches the native backend run with the same options, LJ on (metrics and parameters)', async () => {
      const nat = path.join(root, 'r-native');
      await runOk(['train', both, '--run', nat, '--epochs', '3', '--lr', '0.01', '--threads', '1', ...common()]);
      const a = metricsNoTiming(nat), b = metricsNoTiming(base);
      for (let i = 0; i < 3; i++) {
        for (const k of Object.keys(a[i])) expect(b[i][k], `epoch ${i + 1} ${k}`).to.be.closeTo(a[i][k], 1e-4 * Math.max(1, Math.abs(a[i][k])));
      }
      expect(maxDiff(checkpointTensors(path.join(nat, 'last.ckpt')), checkpointTensors(path.join(base, 'last.ckpt')))).to.be.below(1e-4);
    });

    // Without LJ (whose clamp makes the gradient jump when a pair crosses it, which float32 rounding
    // differences between the runtimes can trigger; see parity.test.ts) the runs agree to 1e-5.
    it('the lr takes effect: --lr 0.01 and 0.002 give different parameters, each matching the native backend', async () => {
      const p: Record<string, Map<string, Float32Array>> = {};
      for (const lr of ['0.01', '0.002']) {
        const o = path.join(root, `r-ort-nolj-${lr}`), n = path.join(root, `r-native-nolj-${lr}`);
        await runOk(['train', noLj, '--backend', 'ort-training', '--run', o, '--epochs', '3', '--lr', lr, ...common()]);
        await runOk(['train', noLj, '--run', n, '--epochs', '3', '--lr', lr, '--threads', '1', ...common()]);
        p[lr] = checkpointTensors(path.join(o, 'last.ckpt'));
        expect(maxDiff(p[lr], checkpointTensors(path.join(n, 'last.ckpt'))), `ort vs native at lr ${lr}`).to.be.below(1e-5);
        const mo = metricsNoTiming(o), mn = metricsNoTiming(n);
        expect(mo.map((r) => r.lr)).to.deep.equal(mn.map((r) => r.lr));
        mo.forEach((r, i) => expect(r.test_loss, `lr ${lr} epoch ${i + 1} test loss`).to.be.closeTo(mn[i].test_loss, 1e-5));
      }
      expect(maxDiff(p['0.01'], p['0.002']), '--lr 0.01 vs 0.002').to.be.above(1e-2);
    });

    it('stopped after epoch 1 and resumed: the same metrics, parameters and moments as the uninterrupted run (exactly)', async () => {
      const run = path.join(root, 'r-ort-resume');
      const first = await trainRun(ortMlp, { backend: 'ort-training', run, data, epochs: 3, batch: 32, lr: 0.01, progress: false, quiet: true, stopAfterEpochs: 1 });
      expect(first.metrics.map((x) => x.epoch)).to.deep.equal([1]);
      const r = await runOk(['train', ortMlp, '--run', run, '--resume', ...common()]);
      expect(r.stdout).to.match(/resuming .* at epoch 2 \(step 8\) on ONNX Runtime training/);
      expect(metricsNoTiming(run)).to.deep.equal(metricsNoTiming(base));
      const a = readCheckpoint(path.join(run, 'last.ckpt')), b = readCheckpoint(path.join(base, 'last.ckpt'));
      expect(maxDiff(checkpointTensors(path.join(run, 'last.ckpt')), checkpointTensors(path.join(base, 'last.ckpt')))).to.equal(0);
      expect(a.optimizer!.step).to.equal(b.optimizer!.step);
      a.optimizer!.states.forEach((s, i) => s.momentums.forEach((mo, k) => expect(Array.from(mo.data), `${s.paramName} ${mo.name}`).to.deep.equal(Array.from(b.optimizer!.states[i].momentums[k].data))));
    });

    it('killed (SIGKILL) mid-run and resumed: ends with the same metrics and parameters as the uninterrupted run', async () => {
      const run = path.join(root, 'r-ort-kill');
      const child = spawn(process.execPath, [CLI_JS, 'train', ortMlp, '--backend', 'ort-training', '--run', run, '--epochs', '3', '--lr', '0.01', ...common()], { stdio: 'ignore' });
      const exited = new Promise<string | null>((res) => child.on('exit', (_c, sig) => res(sig)));
      const metricsFile = path.join(run, 'metrics.jsonl');
      for (;;) {
        // last.ckpt is written (atomically) right after the epoch's metrics row.
        if (fs.existsSync(path.join(run, 'last.ckpt')) && fs.existsSync(metricsFile)) break;
        if (child.exitCode !== null) break;
        await new Promise((r) => setTimeout(r, 10));
      }
      child.kill('SIGKILL');
      const sig = await exited;
      const done = metricsNoTiming(run).length;
      expect(sig, 'killed, not finished').to.equal('SIGKILL');
      expect(done, 'epochs finished before the kill').to.be.within(1, 2);
      await runOk(['train', ortMlp, '--run', run, '--resume', ...common()]);
      expect(metricsNoTiming(run)).to.deep.equal(metricsNoTiming(base));
      expect(maxDiff(checkpointTensors(path.join(run, 'last.ckpt')), checkpointTensors(path.join(base, 'last.ckpt')))).to.equal(0);
    });

    it('resuming with the other backend is refused in one line', async () => {
      const r = await runMain(['train', ortMlp, '--run', base, '--resume', '--backend', 'native', ...common()]);
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.include('was trained with --backend ort-training');
    });

    it('--backend native on an ORT-only folder and ort-training on a native-only folder are refused in one line', async () => {
      const native = path.join(root, 'g-native');
      await runOk(['build-graph', ...MLP, '--out', native]);
      const a = await runMain(['train', ortMlp, '--run', path.join(root, 'r-x1'), ...common()]);
      expect(a.code).to.equal(1);
      expect(a.stderr).to.match(/holds only ONNX Runtime training artifacts .*--backend ort-training/);
      const b = await runMain(['train', native, '--backend', 'ort-training', '--run', path.join(root, 'r-x2'), ...common()]);
      expect(b.code).to.equal(1);
      expect(b.stderr.trim().split('\n')).to.have.length(1);
      expect(b.stderr).to.match(/has no ONNX Runtime training artifacts .*--format ort/);
    });

    it('frozen parameters (ViT, --freeze patch_embed.*) do not change; the others train', async () => {
      const run = path.join(root, 'r-vit-frozen');
      await runOk(['train', ortVit, '--backend', 'ort-training', '--run', run, '--epochs', '1', '--lr', '0.003', ...common()]);
      const init = checkpointTensors(path.join(ortVit, 'checkpoint'));
      const ck = readCheckpoint(path.join(run, 'last.ckpt'));
      expect(ck.frozenParams.map((t) => t.name)).to.deep.equal(['patch_embed.weight', 'patch_embed.bias']);
      expect(ck.optimizer!.states.map((s) => s.paramName)).to.not.include('patch_embed.weight');
      const after = checkpointTensors(path.join(run, 'last.ckpt'));
      for (const n of ['patch_embed.weight', 'patch_embed.bias']) expect(Array.from(after.get(n)!), n).to.deep.equal(Array.from(init.get(n)!));
      for (const n of ['cls_token', 'head.weight', 'blocks.0.attn.qkv.weight'].filter((x) => init.has(x))) {
        expect(maxDiff(new Map([[n, after.get(n)!]]), new Map([[n, init.get(n)!]])), n).to.be.above(1e-4);
      }
      // --resume keeps them frozen (the ORT session is created from last.ckpt's frozen_params).
      await runOk(['train', ortVit, '--run', run, '--resume', '--epochs', '2', ...common()]);
      const again = checkpointTensors(path.join(run, 'last.ckpt'));
      for (const n of ['patch_embed.weight', 'patch_embed.bias']) expect(Array.from(again.get(n)!), n).to.deep.equal(Array.from(init.get(n)!));
    });

    it('SGD: momentum is refused with a clear message; momentum 0 trains (weight decay folded into the gradient)', async () => {
      const r = await runMain(['train', ortMlp, '--backend', 'ort-training', '--run', path.join(root, 'r-sgd-bad'), '--optimizer', 'sgd', '--momentum', '0.9', ...common()]);
      expect(r.code).to.equal(1);
      expect(r.stderr.trim().split('\n')).to.have.length(1);
      expect(r.stderr).to.match(/cannot do SGD with momentum 0\.9.*SGDOptimizerV2.*--momentum 0/);
      const run = path.join(root, 'r-sgd');
      const ok = await runOk(['train', noLj, '--backend', 'ort-training', '--run', run, '--optimizer', 'sgd', '--momentum', '0', '--weight-decay', '0.001', '--lr', '0.05', '--epochs', '2', ...common()]);
      expect(ok.stdout).to.match(/rebuilding the ORT training model for --optimizer sgd --weight-decay 0\.001/);
      const om = readOnnx(path.join(run, 'optimizer_model.onnx')).graph!;
      expect(om.node!.map((n) => n.opType)).to.include('SGDOptimizerV2');
      const m = metricsNoTiming(run);
      expect(m[1].train_ce).to.be.below(m[0].train_ce);
      const ck = readCheckpoint(path.join(run, 'last.ckpt'));
      expect(ck.optimizer!.states[0].momentums.map((x) => x.name)).to.deep.equal(['momentum0']);
      // and it agrees with the native SGD run
      const nat = path.join(root, 'r-sgd-native');
      await runOk(['train', noLj, '--run', nat, '--optimizer', 'sgd', '--momentum', '0', '--weight-decay', '0.001', '--lr', '0.05', '--epochs', '2', '--threads', '1', ...common()]);
      expect(maxDiff(checkpointTensors(path.join(nat, 'last.ckpt')), checkpointTensors(path.join(run, 'last.ckpt')))).to.be.below(1e-5);
    });

    describe('export', () => {
      it('exports an ort-training run like a native one; its test accuracy is the run\'s', async () => {
        const out = path.join(root, 'ort-run.onnx');
        const r = await runOk(['export', base, '--out', out, '--data', data]);
        const acc = Number(/test accuracy: ([\d.]+)%/.exec(r.stdout)![1]) / 100;
        expect(acc).to.be.closeTo(metricsNoTiming(base)[2].test_acc, 1e-9);
      });

      it('--checkpoint FILE (config in the property bag) and --checkpoint FILE --eval-model FILE (no config: the forward part of the eval model) give the same logits', async () => {
        const a = path.join(root, 'from-config.onnx'), b = path.join(root, 'from-eval.onnx');
        const r1 = await runOk(['export', '--checkpoint', path.join(base, 'last.ckpt'), '--out', a, '--data', data]);
        expect(r1.stdout).to.include('rebuilt from the config in the checkpoint');
        // The same checkpoint without a property bag: only the eval model says what the network is.
        const ck = readCheckpoint(path.join(base, 'last.ckpt'));
        const bare: Checkpoint = { ...ck, properties: emptyProperties() };
        const bareFile = path.join(root, 'bare.ckpt');
        writeCheckpoint(bareFile, bare);
        const r2 = await runOk(['export', '--checkpoint', bareFile, '--eval-model', path.join(base, 'eval_model.onnx'), '--out', b]);
        expect(r2.stdout).to.include('forward part of the eval model');
        const g = readOnnx(b).graph!;
        expect(g.input!.map((i) => i.name)).to.deep.equal(['input']);
        expect(g.output!.map((o) => o.name)).to.deep.equal(['logits']);
        expect(g.node!.map((n) => n.opType)).to.not.include('Log');
        const x = Float32Array.from({ length: 4 * 784 }, (_, i) => Math.sin(i * 0.37));
        const la = (await (await createSession(a, { threads: 1 })).run({ input: tensor('float32', x, [4, 1, 28, 28]) })).logits.data as Float32Array;
        const lb = (await (await createSession(b, { threads: 1 })).run({ input: tensor('float32', x, [4, 1, 28, 28]) })).logits.data as Float32Array;
        expect(lb.length).to.equal(40);
        for (let i = 0; i < la.length; i++) expect(lb[i]).to.be.closeTo(la[i], 1e-5);
        // Without config and without --eval-model: a clear refusal.
        const r3 = await runMain(['export', '--checkpoint', bareFile, '--out', path.join(root, 'x.onnx')]);
        expect(r3.code).to.equal(1);
        expect(r3.stderr).to.match(/holds no run config .* --eval-model FILE/);
      });

      it('eval works on an ort-training run', async () => {
        const r = await runOk(['eval', base, '--data', data]);
        const acc = Number(/test acc ([\d.]+)%/.exec(r.stdout)![1]) / 100;
        expect(acc).to.be.closeTo(metricsNoTiming(base)[2].test_acc, 0.01);
      });
    });
  });
});
