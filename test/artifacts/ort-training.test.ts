/**
 * End to end: a tiny model built with our GraphBuilder, gradients from src/grad/backward.ts,
 * packaged as ORT training artifacts + an ODTC checkpoint from our writer, trained on the
 * onnxruntime-web 1.19.2 training build (wasm) in Node. The expected AdamW updates are computed
 * here (torch semantics) from gradients of the same graph run on onnxruntime-node.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { GraphBuilder } from '../../src/graph/builder';
import { Value } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { encodeModel } from '../../src/onnx/proto';
import { createSession, tensor } from '../../src/runtime/session';
import {
  ARTIFACT_FILES,
  OrtArtifactOptions,
  OrtArtifacts,
  buildOrtArtifacts,
  encodeOrtArtifacts,
  joinContiguous,
  readOrtArtifacts,
  splitContiguous,
  writeOrtArtifacts,
} from '../../src/artifacts/ort-artifacts';
import { encodeCheckpoint, readCheckpoint, writeCheckpoint } from '../../src/artifacts/checkpoint';
import { Feeds, OrtTrainingBackend, OrtTrainingError } from '../../src/runtime/ort-training';

const SEED = 7;
const X = Float32Array.from({ length: 12 }, (_, i) => Math.sin(1.3 * i + 0.2));
const Y = Float32Array.from({ length: 8 }, (_, i) => Math.cos(0.7 * i) * 0.8);
const FEEDS: Feeds = { x: { dtype: 'float32', data: X, dims: [4, 3] }, y: { dtype: 'float32', data: Y, dims: [4, 2] } };

/** x[4,3] → (x W + b) · s → MSE against y. W [3,2] and b [2] train; s [2] is frozen (and sits between them). */
function forward(b: GraphBuilder): { loss: Value } {
  const x = b.input('x', 'float32', [4, 3]);
  const y = b.input('y', 'float32', [4, 2]);
  const u = (r: { uniform(a: number, b: number): number }, n: number) => Float32Array.from({ length: n }, () => r.uniform(-0.6, 0.6));
  const w = b.param('fc.weight', [3, 2], u);
  const s = b.param('fc.scale', [2], (_r, n) => new Float32Array(n).fill(1.5), false);
  const bias = b.param('fc.bias', [2], u);
  const pred = b.mul(b.add(b.matmul(x, w), bias), s);
  const d = b.sub(pred, y);
  const loss = b.output(b.reduceMean(b.mul(d, d), null, false), 'loss');
  return { loss };
}

function artifacts(opts: OrtArtifactOptions = {}): OrtArtifacts {
  const b = new GraphBuilder({ seed: SEED });
  const { loss } = forward(b);
  return buildOrtArtifacts(b, loss, opts);
}

type Params = Record<string, Float64Array>;

/** Initial parameters of the recipe (same seed, same draws). */
function initialParams(): Params {
  const b = new GraphBuilder({ seed: SEED });
  forward(b);
  return Object.fromEntries(b.params.map((p) => [p.value.name, Float64Array.from(p.init)]));
}

/** Loss and d loss / d W, d loss / d b at the given parameters, on onnxruntime-node. */
async function reference(params: Params): Promise<{ loss: number; grads: Params }> {
  const b = new GraphBuilder({ seed: SEED });
  const { loss } = forward(b);
  const trainable = b.params.filter((p) => p.trainable);
  const grads = backward(b, loss, trainable.map((p) => p.value));
  trainable.forEach((p, i) => b.output(grads[i]!, `ref.${p.value.name}_g`));
  const sess = await createSession(encodeModel(b.toModel({ paramsAsInputs: true })), { threads: 1 });
  const feeds: Record<string, ReturnType<typeof tensor>> = { x: tensor('float32', X, [4, 3]), y: tensor('float32', Y, [4, 2]) };
  for (const p of b.params) feeds[p.value.name] = tensor('float32', Float32Array.from(params[p.value.name]), p.value.shape as number[]);
  const out = await sess.run(feeds);
  const g: Params = {};
  for (const p of trainable) g[p.value.name] = Float64Array.from(out[`ref.${p.value.name}_g`].data as Float32Array);
  await sess.release();
  return { loss: (out.loss.data as Float32Array)[0], grads: g };
}

interface AdamState { m: Params; v: Params; t: number }
const AD = { b1: 0.9, b2: 0.999, eps: 1e-8 };

/** One torch.optim.AdamW step (p ← p − lr·wd·p; Adam with bias correction), in double precision. */
function adamwStep(p: Params, g: Params, st: AdamState, lr: number, wd: number): void {
  st.t += 1;
  const bc1 = 1 - Math.pow(AD.b1, st.t);
  const bc2 = 1 - Math.pow(AD.b2, st.t);
  for (const k of Object.keys(g)) {
    const P = p[k], G = g[k];
    st.m[k] ??= new Float64Array(P.length);
    st.v[k] ??= new Float64Array(P.length);
    const M = st.m[k], V = st.v[k];
    for (let i = 0; i < P.length; i++) {
      P[i] -= lr * wd * P[i];
      M[i] = AD.b1 * M[i] + (1 - AD.b1) * G[i];
      V[i] = AD.b2 * V[i] + (1 - AD.b2) * G[i] * G[i];
      P[i] -= (lr * (M[i] / bc1)) / (Math.sqrt(V[i] / bc2) + AD.eps);
    }
  }
}

const ORDER = ['fc.weight', 'fc.scale', 'fc.bias'];
const SHAPES: Record<string, number[]> = { 'fc.weight': [3, 2], 'fc.scale': [2], 'fc.bias': [2] };
const layoutOf = (names: string[]) => names.map((n) => ({ name: n, shape: SHAPES[n] }));

async function paramsOf(be: OrtTrainingBackend): Promise<Params> {
  const flat = await be.getContiguousParameters(false);
  return Object.fromEntries(splitContiguous(flat, layoutOf(ORDER)).map((t) => [t.name, Float64Array.from(t.data)]));
}

function expectClose(actual: Params, expected: Params, what: string, tol = 2e-6): void {
  for (const k of Object.keys(expected)) {
    const a = actual[k], e = expected[k];
    expect(a.length, `${what}: ${k} length`).to.equal(e.length);
    for (let i = 0; i < e.length; i++) expect(a[i], `${what}: ${k}[${i}]`).to.be.closeTo(e[i], tol + 1e-5 * Math.abs(e[i]));
  }
}

async function backend(a: OrtArtifacts): Promise<OrtTrainingBackend> {
  return OrtTrainingBackend.create({ ...encodeOrtArtifacts(a), sources: ['(test artifacts)'] });
}

/** One train step (fresh gradients) + one optimizer step. */
async function step(be: OrtTrainingBackend): Promise<number> {
  await be.lazyResetGrad();
  const out = await be.trainStep(FEEDS);
  await be.optimizerStep();
  return (out.loss.data as Float32Array)[0];
}

describe('ORT training artifacts on onnxruntime-web 1.19.2 (wasm, Node)', function () {
  this.timeout(120000);
  let dir: string;
  before(() => {
    dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-ort-'));
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('builds the documented layout', () => {
    const a = artifacts({ lr: 0.01, adamw: { weightDecay: 0.05 } });
    const tg = a.trainingModel.graph!;
    expect(tg.input!.map((i) => i.name)).to.deep.equal([
      'x', 'y', 'fc.weight', 'fc.scale', 'fc.bias', 'fc.weight_grad.accumulation.buffer', 'fc.bias_grad.accumulation.buffer', 'lazy_reset_grad',
    ]);
    expect(tg.output!.map((o) => o.name)).to.deep.equal(['loss', 'fc.weight_grad.accumulation.out', 'fc.bias_grad.accumulation.out']);
    for (const o of tg.output!.slice(1)) {
      expect(o.type!.tensorType!.elemType).to.equal(9); // BOOL
      expect(o.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue))).to.deep.equal([1]);
    }
    const acc = tg.node!.filter((n) => n.opType === 'InPlaceAccumulatorV2');
    expect(acc.map((n) => [n.domain, ...n.input!])).to.deep.equal([
      ['com.microsoft', 'fc.weight_grad.accumulation.buffer', 'fc.weight_grad', 'lazy_reset_grad'],
      ['com.microsoft', 'fc.bias_grad.accumulation.buffer', 'fc.bias_grad', 'lazy_reset_grad'],
    ]);
    expect(tg.initializer!.map((t) => t.name)).to.not.include.members(ORDER);
    expect(a.trainingModel.opsetImport!.map((o) => [o.domain, Number(o.version)])).to.deep.equal([['', 17], ['com.microsoft', 1]]);
    expect(Number(a.trainingModel.irVersion)).to.be.at.most(10);
    // eval: same outputs in the same positions, params as inputs, no gradient plumbing
    const eg = a.evalModel.graph!;
    expect(eg.output!.map((o) => o.name)).to.deep.equal(['loss']);
    expect(eg.input!.map((i) => i.name)).to.deep.equal(['x', 'y', 'fc.weight', 'fc.scale', 'fc.bias']);
    expect(eg.node!.some((n) => n.domain === 'com.microsoft' || n.name!.startsWith('grad'))).to.equal(false);
    // optimizer
    const og = a.optimizerModel.graph!;
    expect(og.input!.map((i) => i.name)).to.deep.equal(['learning_rate', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments']);
    expect(og.output!.map((o) => [o.name, o.type!.tensorType!.elemType])).to.deep.equal([['updated_flag', 9]]);
    const adam = og.node!.filter((n) => n.opType === 'AdamWOptimizer');
    expect(adam).to.have.length(1);
    expect(adam[0].domain).to.equal('com.microsoft');
    const attrs = Object.fromEntries(adam[0].attribute!.map((t) => [t.name, t.type === 2 ? Number(t.i) : t.f]));
    expect(attrs).to.deep.include({ adam_mode: 0, correct_bias: 1 });
    expect(attrs.alpha).to.be.closeTo(0.9, 1e-7);
    expect(attrs.beta).to.be.closeTo(0.999, 1e-7);
    expect(attrs.weight_decay).to.be.closeTo(0.05, 1e-7);
    // checkpoint
    expect(a.checkpoint.requiresGradParams.map((t) => t.name)).to.deep.equal(['fc.weight', 'fc.bias']);
    expect(a.checkpoint.frozenParams.map((t) => t.name)).to.deep.equal(['fc.scale']);
    expect(a.params).to.deep.equal([
      { name: 'fc.weight', shape: [3, 2], trainable: true },
      { name: 'fc.scale', shape: [2], trainable: false },
      { name: 'fc.bias', shape: [2], trainable: true },
    ]);
    // same recipe, same bytes
    const e1 = encodeOrtArtifacts(artifacts({ lr: 0.01 }));
    const e2 = encodeOrtArtifacts(artifacts({ lr: 0.01 }));
    for (const k of Object.keys(e1) as (keyof typeof e1)[]) expect(Buffer.from(e1[k]).equals(Buffer.from(e2[k])), k).to.equal(true);
  });

  it('loads from files written by writeOrtArtifacts and trains: the loss falls', async () => {
    const out = path.join(dir, 'run1');
    const files = writeOrtArtifacts(out, artifacts({ lr: 0.05, adamw: { weightDecay: 0.01 } }));
    expect(fs.readdirSync(out).sort()).to.deep.equal(Object.values(ARTIFACT_FILES).sort());
    const r = readOrtArtifacts(out);
    const be = await OrtTrainingBackend.create({ ...r, sources: Object.values(files) });
    try {
      expect(be.trainingInputNames).to.deep.equal(['x', 'y']);
      expect(be.trainingOutputNames).to.deep.equal(['loss']);
      expect(be.evalOutputNames).to.deep.equal(['loss']);
      const ref0 = await reference(initialParams());
      const ev0 = (await be.evalStep(FEEDS)).loss.data[0] as number;
      expect(ev0).to.be.closeTo(ref0.loss, 1e-5);
      const losses: number[] = [];
      for (let i = 0; i < 30; i++) losses.push(await step(be));
      expect(losses[0]).to.be.closeTo(ref0.loss, 1e-5);
      // Adam at this lr wobbles a little near the end, so check the trend every 10 steps.
      for (const i of [10, 20, 29]) expect(losses[i], `step ${i}`).to.be.below(losses[i - 10 + (i === 29 ? 1 : 0)]);
      expect(losses[29]).to.be.below(0.6 * losses[0]);
      const evEnd = (await be.evalStep(FEEDS)).loss.data[0] as number;
      expect(evEnd).to.be.below(losses[29]);
    } finally {
      await be.release();
    }
  });

  it('step 1 is torch AdamW (weight decay, bias correction) on the gradient of our graph; frozen params stay; checkpoint initial_learning_rate is ignored', async () => {
    const lr = 0.05;
    const wd = 0.1;
    const a = artifacts({ lr, adamw: { weightDecay: wd } });
    a.checkpoint.optimizer!.initialLearningRate = 0.7; // the web runtime ignores it
    const be = await backend(a);
    try {
      const p0 = initialParams();
      expectClose(await paramsOf(be), p0, 'initial');
      const { grads } = await reference(p0);
      await step(be);
      const expected = initialParams();
      adamwStep(expected, grads, { m: {}, v: {}, t: 0 }, lr, wd);
      const got = await paramsOf(be);
      expectClose(got, expected, 'after step 1');
      expect(Array.from(got['fc.scale'])).to.deep.equal([1.5, 1.5]);
      // and the update is not the one a 0.7 or 0.001 learning rate would give
      const wrong = initialParams();
      adamwStep(wrong, grads, { m: {}, v: {}, t: 0 }, 0.001, wd);
      expect(Math.abs(got['fc.weight'][0] - wrong['fc.weight'][0])).to.be.above(0.02);
    } finally {
      await be.release();
    }
  });

  it('a constant lr in the optimizer model scales the runtime learning rate (lr 0.2 vs 0.05)', async () => {
    const p0 = initialParams();
    const { grads } = await reference(p0);
    const deltas: number[] = [];
    for (const lr of [0.05, 0.2]) {
      const be = await backend(artifacts({ lr, adamw: { weightDecay: 0 } }));
      try {
        await step(be);
        const expected = initialParams();
        adamwStep(expected, grads, { m: {}, v: {}, t: 0 }, lr, 0);
        const got = await paramsOf(be);
        expectClose(got, expected, `lr ${lr}`);
        deltas.push(Math.abs(got['fc.bias'][0] - p0['fc.bias'][0]));
      } finally {
        await be.release();
      }
    }
    expect(deltas[1] / deltas[0]).to.be.closeTo(4, 1e-3);
  });

  it('a per-step lr table (Gather on step − 1, clamped to the last entry) drives every update', async () => {
    const schedule = [0.1, 0.02, 0.005];
    const wd = 0.01;
    const be = await backend(artifacts({ lr: Float32Array.from(schedule), adamw: { weightDecay: wd } }));
    try {
      const expected = initialParams();
      const st: AdamState = { m: {}, v: {}, t: 0 };
      for (let s = 1; s <= 5; s++) {
        const { grads } = await reference(await paramsOf(be));
        await step(be);
        adamwStep(expected, grads, st, schedule[Math.min(s - 1, schedule.length - 1)], wd);
        expectClose(await paramsOf(be), expected, `schedule step ${s}`);
      }
    } finally {
      await be.release();
    }
  });

  it('uses stored moments and step from our checkpoint, and accumulates gradients across train steps until lazyResetGrad', async () => {
    const lr = 0.03;
    const wd = 0.02;
    // Simulate 3 steps in TS, store the state in a checkpoint, resume on the runtime.
    const p = initialParams();
    const st: AdamState = { m: {}, v: {}, t: 0 };
    for (let s = 0; s < 3; s++) adamwStep(p, (await reference(p)).grads, st, lr, wd);
    const a = artifacts({ lr, adamw: { weightDecay: wd } });
    const f32 = (x: Float64Array) => Float32Array.from(x);
    a.checkpoint.requiresGradParams = a.checkpoint.requiresGradParams.map((t) => ({ ...t, data: f32(p[t.name]) }));
    a.checkpoint.optimizer = {
      step: 3,
      initialLearningRate: lr,
      states: ['fc.weight', 'fc.bias'].map((n) => ({
        paramName: n,
        momentums: [
          { name: 'momentum0', dims: SHAPES[n], data: f32(st.m[n]) },
          { name: 'momentum1', dims: SHAPES[n], data: f32(st.v[n]) },
        ],
      })),
    };
    const ckptFile = path.join(dir, 'resume.ckpt');
    writeCheckpoint(ckptFile, a.checkpoint);
    const be = await OrtTrainingBackend.create({ ...encodeOrtArtifacts(a), checkpoint: fs.readFileSync(ckptFile), sources: [ckptFile] });
    try {
      const pr = (x: Params) => Object.fromEntries(Object.entries(x).map(([k, v]) => [k, Float64Array.from(f32(v))]));
      expectClose(await paramsOf(be), pr(p), 'resumed params');
      const { grads } = await reference(await paramsOf(be));
      await be.lazyResetGrad();
      await be.trainStep(FEEDS);
      await be.trainStep(FEEDS); // accumulates: the optimizer sees 2·g
      await be.optimizerStep();
      const doubled = Object.fromEntries(Object.entries(grads).map(([k, g]) => [k, g.map((x) => 2 * x)]));
      const expected = pr(p);
      adamwStep(expected, doubled, { m: st.m, v: st.v, t: 3 }, lr, wd);
      expectClose(await paramsOf(be), expected, 'step 4 after resume', 5e-6);
    } finally {
      await be.release();
    }
  });

  it('flat parameters follow the training graph input order; saving them to a checkpoint and reloading reproduces the model', async () => {
    const a = artifacts({ lr: 0.05 });
    const be = await backend(a);
    try {
      expect(await be.getParametersSize(false)).to.equal(10);
      expect(await be.getParametersSize(true)).to.equal(8);
      const p0 = initialParams();
      expect(Array.from(await be.getContiguousParameters(false))).to.deep.equal(Array.from(joinContiguous(ORDER.map((n) => ({ name: n, dims: SHAPES[n], data: Float32Array.from(p0[n]) })), layoutOf(ORDER))));
      const trainOrder = ['fc.weight', 'fc.bias'];
      expect(Array.from(await be.getContiguousParameters(true))).to.deep.equal(Array.from(joinContiguous(trainOrder.map((n) => ({ name: n, dims: SHAPES[n], data: Float32Array.from(p0[n]) })), layoutOf(trainOrder))));
      for (let i = 0; i < 5; i++) await step(be);
      const trainedLoss = (await be.evalStep(FEEDS)).loss.data[0] as number;

      // save: flat buffer -> named tensors -> checkpoint file -> new session
      const named = splitContiguous(await be.getContiguousParameters(false), a.params);
      const ckptFile = path.join(dir, 'saved.ckpt');
      writeCheckpoint(ckptFile, {
        requiresGradParams: named.filter((t) => a.params.find((p) => p.name === t.name)!.trainable),
        frozenParams: named.filter((t) => !a.params.find((p) => p.name === t.name)!.trainable),
        properties: { ints: { step: 5 }, floats: {}, strings: {} },
      });
      const reread = readCheckpoint(ckptFile);
      const be2 = await OrtTrainingBackend.create({ ...encodeOrtArtifacts(artifacts({ lr: 0.05 })), checkpoint: encodeCheckpoint(reread), sources: [ckptFile] });
      try {
        expect((await be2.evalStep(FEEDS)).loss.data[0]).to.equal(trainedLoss);
        // loadParametersBuffer: back to the initial weights
        await be2.loadParametersBuffer(joinContiguous(trainOrder.map((n) => ({ name: n, dims: SHAPES[n], data: Float32Array.from(p0[n]) })), layoutOf(trainOrder)), true);
        expect((await be2.evalStep(FEEDS)).loss.data[0]).to.be.closeTo((await reference(p0)).loss, 1e-6);
      } finally {
        await be2.release();
      }
    } finally {
      await be.release();
    }
  });

  describe('errors say what was being done and carry ORT\'s message', () => {
    it('creating a session from a broken training model', async () => {
      const a = artifacts();
      const g = a.trainingModel.graph!;
      g.input = g.input!.filter((i) => i.name !== 'fc.bias_grad.accumulation.buffer');
      const err = await OrtTrainingBackend.create({ ...encodeOrtArtifacts(a), sources: ['out/training_model.onnx', 'out/checkpoint'] }).then(
        () => null,
        (e: unknown) => e,
      );
      expect(err).to.be.instanceOf(OrtTrainingError);
      expect((err as Error).message).to.match(/^creating the TrainingSession from out\/training_model.onnx, out\/checkpoint failed: /);
      expect((err as Error).message).to.match(/fc\.bias/);
      expect(typeof (err as OrtTrainingError).raw === 'number' || (err as Error).message.includes('checkpoint does not fit')).to.equal(true);
    });

    it('an optimizer model with the wrong inputs (a bare wasm exception, message recovered)', async () => {
      const a = artifacts();
      const og = a.optimizerModel.graph!;
      og.input = [og.input![1], og.input![0], ...og.input!.slice(2)];
      const err = (await OrtTrainingBackend.create(encodeOrtArtifacts(a)).catch((e: unknown) => e)) as OrtTrainingError;
      expect(err).to.be.instanceOf(OrtTrainingError);
      expect(typeof err.raw).to.equal('number');
      expect(err.message).to.match(/^creating the TrainingSession from <in-memory artifacts> failed: INVALID_ARGUMENT: Invalid graph inputs/);
      expect(err.message).to.contain('Expected: [learning_rate, step, params');
    });

    it('a checkpoint that does not fit the model', async () => {
      const a = artifacts();
      a.checkpoint.requiresGradParams = a.checkpoint.requiresGradParams.filter((t) => t.name !== 'fc.bias');
      a.checkpoint.optimizer!.states = a.checkpoint.optimizer!.states.filter((s) => s.paramName !== 'fc.bias');
      const err = (await OrtTrainingBackend.create(encodeOrtArtifacts(a)).catch((e: unknown) => e)) as Error;
      expect(err.message).to.match(/creating the TrainingSession .* failed: the checkpoint does not fit the training model: trainable parameters of the training model missing from the checkpoint's requires-grad parameters: fc\.bias/);
    });

    it('train step with a wrongly shaped feed, missing feeds, and calls after release', async () => {
      const be = await backend(artifacts());
      const bad = await be.trainStep({ ...FEEDS, x: { dtype: 'float32', data: new Float32Array(10), dims: [5, 2] } }).catch((e: unknown) => e as OrtTrainingError);
      expect(bad).to.be.instanceOf(OrtTrainingError);
      expect((bad as Error).message).to.match(/^running train step failed: INVALID_ARGUMENT: Got invalid dimensions for input: x/);
      const wrongType = await be.evalStep({ ...FEEDS, y: { dtype: 'float64', data: new Float64Array(8), dims: [4, 2] } }).catch((e: unknown) => e as Error);
      expect(wrongType.message).to.match(/^running eval step failed: .*Unexpected input data type/);
      const missing = await be.trainStep({ x: FEEDS.x }).catch((e: unknown) => e as Error);
      expect(missing.message).to.equal('running train step failed: feeds do not match the model inputs [x, y]; missing y');
      const wrongSize = (await be.loadParametersBuffer(new Float32Array(3), true).then(() => null, (e: unknown) => e)) as Error;
      expect(wrongSize.message).to.match(/^loading parameters .* failed: buffer has 3 values, the session has 8 parameters/);
      await be.release();
      const after = (await be.optimizerStep().then(() => null, (e: unknown) => e)) as Error;
      expect(after.message).to.match(/^running optimizer step failed: the TrainingSession .* was already released/);
    });
  });
});
