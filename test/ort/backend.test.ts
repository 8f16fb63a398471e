/**
 * Units of the ORT training path: the lr scale that makes onnxruntime-web's fixed 0.001 into the
 * run's float32 lr exactly, the per-step lr table (= the trainer's lrAt per step), --freeze
 * patterns, and the ORT backend's refusals and readable runtime errors.
 */
import { expect } from 'chai';
import { buildOptimizerModel, lrScale } from '../../src/artifacts/ort-artifacts';
import { buildOrtFromConfig, freezeMatcher, lrSchedule, ortOptimizerModel, resolveFrozen } from '../../src/artifacts/ort-build';
import { encodeModel } from '../../src/onnx/proto';
import { lrAt } from '../../src/optim/schedule';
import { OrtTrainingError } from '../../src/runtime/ort-training';
import { OrtTrainBackend } from '../../src/train/ort-backend';
import { initialState } from '../../src/train/state';
import { tinyConfig } from './helpers';

describe('ORT training path: units', function () {
  this.timeout(120000);

  it('lrScale: float32(float32(0.001) · scale) is float32(lr), or 1 ulp off where no float32 scale hits it (lr 1e-7 to 10)', () => {
    // float32(0.001) = 1.024·2⁻¹⁰ (+ε): the products of it with float32 scales skip about 2% of the
    // float32 values, which then come out 1 ulp away.
    let misses = 0;
    const N = 4000;
    for (let i = 0; i <= N; i++) {
      const lr = Math.pow(10, -7 + (8 * i) / N);
      const applied = Math.fround(Math.fround(0.001) * lrScale(lr, 0.001));
      const want = Math.fround(lr);
      if (applied !== want) {
        misses++;
        const bits = (v: number) => new Int32Array(Float32Array.of(v).buffer)[0];
        expect(Math.abs(bits(applied) - bits(want)), `lr ${lr}: ulps`).to.be.at.most(1);
      }
    }
    expect(misses / N).to.be.below(0.03);
    expect(lrScale(0.001, 0.001)).to.equal(1);
    expect(lrScale(0, 0.001)).to.equal(0);
  });

  it('lrSchedule is the lr the trainer computes at every step (cosine with warmup, multistep, constant)', () => {
    const base = tinyConfig('mlp-fmnist').train;
    for (const t of [
      { ...base, schedule: 'cosine' as const, warmupEpochs: 1, epochs: 4, lr: 3e-3, minLr: 1e-5 },
      { ...base, schedule: 'multistep' as const, milestones: [2, 3], gamma: 0.1, epochs: 4, lr: 0.1 },
      { ...base, schedule: 'constant' as const, epochs: 2, lr: 0.02 },
    ]) {
      const S = 7;
      const table = lrSchedule(t, S);
      expect(table.length).to.equal(t.epochs * S);
      for (let epoch = 0, k = 0; epoch < t.epochs; epoch++) for (let i = 0; i < S; i++, k++) expect(table[k], `${t.schedule} step ${k + 1}`).to.equal(lrAt(t, epoch + i / S, t.epochs));
    }
  });

  it('the optimizer model: a constant lr (one Mul) or a table (Gather on step − 1); SGD is SGDOptimizerV2 with 5 inputs', () => {
    const t = tinyConfig('mlp-fmnist', { lr: 0.02 }).train;
    expect(ortOptimizerModel(t, 0.02).graph!.node!.map((n) => n.opType)).to.deep.equal(['Mul', 'AdamWOptimizer']);
    const tab = ortOptimizerModel(t, Float64Array.of(0.02, 0.01, 0.005));
    expect(tab.graph!.node!.map((n) => n.opType)).to.deep.equal(['Sub', 'Max', 'Min', 'Gather', 'Mul', 'AdamWOptimizer']);
    // A table whose entries are all equal is a constant.
    expect(ortOptimizerModel(t, Float64Array.of(0.02, 0.02)).graph!.node!.map((n) => n.opType)).to.deep.equal(['Mul', 'AdamWOptimizer']);
    const adam = tab.graph!.node!.find((n) => n.opType === 'AdamWOptimizer')!;
    const attr = Object.fromEntries(adam.attribute!.map((a) => [a.name, a.type === 2 ? Number(a.i) : a.f]));
    expect(attr.adam_mode).to.equal(0);
    expect(attr.weight_decay).to.be.closeTo(t.weightDecay, 1e-12);
    const sgd = buildOptimizerModel({ optimizer: 'sgd', lr: 0.05 });
    expect(sgd.graph!.input!.map((i) => i.name)).to.deep.equal(['learning_rate', 'step', 'params', 'gradients', 'first_order_moments']);
    expect(sgd.graph!.node!.map((n) => n.opType)).to.deep.equal(['Mul', 'SGDOptimizerV2']);
    expect(() => ortOptimizerModel({ ...t, optimizer: 'sgd', momentum: 0.9 }, 0.1)).to.throw(/cannot do SGD with momentum 0\.9/);
  });

  it('--freeze patterns: globs match whole names (dots included), /regex/ and re: are unanchored, lists by comma', () => {
    const names = ['patch_embed.weight', 'patch_embed.bias', 'blocks.0.attn.qkv.weight', 'head.weight', 'head.bias'];
    const pick = (p: string[]) => names.filter(freezeMatcher(p));
    expect(pick(['patch_embed.*'])).to.deep.equal(['patch_embed.weight', 'patch_embed.bias']);
    expect(pick(['*.bias'])).to.deep.equal(['patch_embed.bias', 'head.bias']);
    expect(pick(['head.?ias'])).to.deep.equal(['head.bias']);
    expect(pick(['blocks.*', 'head.weight'])).to.deep.equal(['blocks.0.attn.qkv.weight', 'head.weight']);
    expect(pick(['head.weight,head.bias'])).to.deep.equal(['head.weight', 'head.bias']);
    expect(pick(['/attn/'])).to.deep.equal(['blocks.0.attn.qkv.weight']);
    expect(pick(['re:^head\\.'])).to.deep.equal(['head.weight', 'head.bias']);
    expect(pick(['patch_embed'])).to.deep.equal([]); // a glob is the whole name
    const cfg = tinyConfig('vit-tiny-fmnist');
    expect(resolveFrozen(cfg, ['patch_embed.*'])).to.deep.equal(['patch_embed.weight', 'patch_embed.bias']);
  });

  describe('the backend', () => {
    const cfg = tinyConfig('mlp-fmnist', { lr: 0.01 });
    const art = buildOrtFromConfig(cfg);
    const models = { trainingModel: encodeModel(art.trainingModel), evalModel: encodeModel(art.evalModel), optimizerModel: encodeModel(ortOptimizerModel(cfg.train, Float64Array.of(0.01, 0.005))), lrs: Float64Array.of(0.01, 0.005) };
    const fresh = () => initialState([...art.state.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), 'adamw', 1, new Map());
    const x = new Float32Array(4 * 784).fill(0.1);
    const y = BigInt64Array.of(1n, 2n, 3n, 4n);

    it('refuses an lr that is not the one in the optimizer model for that step (no silent schedule mismatch)', async () => {
      const st = fresh();
      const be = await OrtTrainBackend.create(cfg, st, models);
      try {
        await be.step(x, y, [4, 1, 28, 28], 0.01);
        st.step++;
        const err = await be.step(x, y, [4, 1, 28, 28], 0.01).then(() => null, (e: unknown) => e as Error);
        expect(err).to.be.instanceOf(OrtTrainingError);
        expect(err!.message).to.match(/^step 2: the trainer's learning rate 0\.01 is not the 0\.005 built into the optimizer model/);
      } finally {
        await be.release();
      }
    });

    it('runtime failures say what was being done, in one line', async () => {
      const st = fresh();
      const be = await OrtTrainBackend.create(cfg, st, models);
      try {
        const err = await be.step(new Float32Array(4 * 27 * 27), y, [4, 1, 27, 27], 0.01).then(() => null, (e: unknown) => e as Error);
        expect(err).to.be.instanceOf(OrtTrainingError);
        expect(err!.message).to.match(/^ort-training step 1: running train step failed: /);
        expect(err!.message).to.not.include('\n');
      } finally {
        await be.release();
      }
      // A state whose frozen set differs from the training model's.
      const st2 = fresh();
      st2.frozen = new Set(['fc1.weight']);
      const e2 = await OrtTrainBackend.create(cfg, st2, models).then(() => null, (e: unknown) => e as Error);
      expect(e2!.message).to.match(/the training model freezes \[\] but the checkpoint freezes \[fc1\.weight\]; rebuild the artifacts with the same --freeze/);
      // AdamW without the P.gradient outputs (an SGD training model) cannot track the moments.
      const sgdArt = buildOrtFromConfig(tinyConfig('mlp-fmnist', { optimizer: 'sgd', momentum: 0 }));
      const e3 = await OrtTrainBackend.create(cfg, fresh(), { ...models, trainingModel: encodeModel(sgdArt.trainingModel) }).then(() => null, (e: unknown) => e as Error);
      expect(e3!.message).to.match(/does not output the parameter gradients \(P\.gradient\)/);
    });
  });
});
