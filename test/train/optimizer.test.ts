/**
 * Optimizer semantics of the native train step against float64 TypeScript re-implementations of
 * torch.optim.AdamW and torch.optim.SGD (momentum, weight decay, dampening 0, no nesterov), with the
 * gradients taken from the gradient graph (buildGradientCore + outputs of d loss / d param):
 *
 *   AdamW:  p ← p(1 − lr·wd);  m ← β1 m + (1−β1) g;  v ← β2 v + (1−β2) g²;
 *           p ← p − lr/(1−β1ᵗ) · m / (√v / √(1−β2ᵗ) + eps)
 *   SGD:    d = g + wd·p;  buf ← μ·buf + d (buf₁ = d);  p ← p − lr·buf
 *
 *  - graph level: one AdamW step at t = 3 from non-zero moments; two SGD steps;
 *  - trainer level (trainRun): one AdamW step (t = 1: p₁ = p₀(1 − lr·wd) − lr·g/(|g| + eps), also
 *    checked by hand on single elements) and two SGD steps of --optimizer sgd on adamw graphs,
 *    replaying the trainer's batches (order and flips from Rng(seed)).
 *
 * Tolerance: |graph − reference| ≤ 1e-6·|p| + 1e-4·|Δp_ref| + 1e-8 per element (float32 graph vs
 * float64 reference; the gradient graph and the train step may round a little differently).
 */
import { expect } from 'chai';
import * as path from 'node:path';
import { RunConfig, loadPreset, validateConfig } from '../../src/config';
import { buildGradientCore, buildNativeTrainStep, nextName } from '../../src/artifacts/graphs';
import { readCheckpoint } from '../../src/artifacts/checkpoint';
import { trainRun } from '../../src/cli/train';
import { epochBatches } from '../../src/data/batches';
import { loadFashionMnist } from '../../src/data/fashion-mnist';
import { Rng } from '../../src/graph/rng';
import { encodeModel } from '../../src/onnx/proto';
import { stateName } from '../../src/optim/optimizers';
import { createSession, ort, tensor } from '../../src/runtime/session';
import { checkpointTensors, runOk } from '../cli/helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

type Params = Map<string, Float32Array>;

function tinyMlp(): RunConfig {
  const cfg = loadPreset('mlp-fmnist');
  if (cfg.model.type === 'mlp') cfg.model.hidden = [32, 16];
  return validateConfig(cfg);
}

interface Batch {
  x: Float32Array;
  y: BigInt64Array;
  size: number;
}

/** Runs the gradient graph of `cfg`: d loss / d param for every trainable parameter. */
async function gradientGraph(cfg: RunConfig): Promise<{ grads: (p: Params, bt: Batch) => Promise<Params>; shapes: Map<string, number[]>; names: string[] }> {
  const core = buildGradientCore(cfg);
  core.trainable.forEach((p, i) => core.b.output(core.grads[i], `dL.${p.value.name}`));
  const sess = await createSession(encodeModel(core.b.toModel({ paramsAsInputs: true })), { threads: 1 });
  const shapes = new Map(core.params.map((p) => [p.value.name, p.value.shape as number[]]));
  const [C, H, W] = cfg.model.image;
  return {
    shapes,
    names: core.params.map((p) => p.value.name),
    grads: async (params, bt) => {
      const feeds: Record<string, ort.Tensor> = { input: tensor('float32', bt.x, [bt.size, C, H, W]), labels: tensor('int64', bt.y, [bt.size]) };
      for (const [n, d] of params) feeds[n] = tensor('float32', d, shapes.get(n)!);
      const out = await sess.run(feeds);
      return new Map(core.trainable.map((p) => [p.value.name, Float32Array.from(out[`dL.${p.value.name}`].data as Float32Array)]));
    },
  };
}

function expectClose(what: string, got: Float32Array, ref: Float64Array, p0: Float32Array): void {
  expect(got.length, `${what} length`).to.equal(ref.length);
  let moved = 0;
  for (let i = 0; i < ref.length; i++) {
    const tol = 1e-6 * Math.abs(ref[i]) + 1e-4 * Math.abs(ref[i] - p0[i]) + 1e-8;
    const err = Math.abs(got[i] - ref[i]);
    if (!(err <= tol)) expect.fail(`${what}[${i}]: graph ${got[i]} vs reference ${ref[i]} (from ${p0[i]}), |err| ${err.toExponential(3)} > ${tol.toExponential(3)}`);
    if (got[i] !== p0[i]) moved++;
  }
  expect(moved, `${what}: elements updated`).to.be.above(0);
}

/** torch.optim.AdamW, one step, float64. */
function adamwRef(p: Float32Array, g: Float32Array, m: Float32Array, v: Float32Array, h: { lr: number; wd: number; b1: number; b2: number; eps: number; t: number }) {
  const n = p.length;
  const P = new Float64Array(n), M = new Float64Array(n), V = new Float64Array(n);
  const bc1 = 1 - Math.pow(h.b1, h.t), bc2 = 1 - Math.pow(h.b2, h.t);
  for (let i = 0; i < n; i++) {
    const decayed = p[i] * (1 - h.lr * h.wd);
    M[i] = h.b1 * m[i] + (1 - h.b1) * g[i];
    V[i] = h.b2 * v[i] + (1 - h.b2) * g[i] * g[i];
    const denom = Math.sqrt(V[i]) / Math.sqrt(bc2) + h.eps;
    P[i] = decayed - (h.lr / bc1) * (M[i] / denom);
  }
  return { p: P, m: M, v: V };
}

/** torch.optim.SGD (momentum, weight_decay; dampening 0, nesterov False), one step, float64. */
function sgdRef(p: Float32Array, g: Float32Array, buf: Float32Array | null, h: { lr: number; wd: number; mu: number }) {
  const n = p.length;
  const P = new Float64Array(n), B = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const d = g[i] + h.wd * p[i];
    B[i] = buf === null ? d : h.mu * buf[i] + d; // torch: buf = clone(d) on the first step
    P[i] = p[i] - h.lr * B[i];
  }
  return { p: P, buf: B };
}

describe('train: optimizer semantics match torch', function () {
  this.timeout(120000);
  let root: string, dataDir: string;
  let batches: Batch[];

  before(function () {
    root = tempDir('ljtrain-optim-');
    dataDir = writeTinyFashionMnist({ dir: path.join(root, 'data') });
    const ds = loadFashionMnist(dataDir).train;
    batches = [...epochBatches(ds, { batchSize: 24 })].slice(0, 2);
  });
  after(() => removeDir(root));

  it('graph level: one AdamW step at t = 3 from non-zero moments equals torch.optim.AdamW', async function () {
    const cfg = tinyMlp();
    const ts = buildNativeTrainStep(cfg, 'adamw');
    const sess = await createSession(encodeModel(ts.model), { threads: 1 });
    const gg = await gradientGraph(cfg);
    const rng = new Rng(3);
    const params: Params = new Map(ts.params.map((p) => [p.value.name, Float32Array.from(p.init)]));
    const m0: Params = new Map([...params].map(([n, p]) => [n, Float32Array.from(p, () => 1e-3 * rng.normal())]));
    const v0: Params = new Map([...params].map(([n, p]) => [n, Float32Array.from(p, () => 1e-5 * rng.next())]));
    const h = { lr: 0.01, wd: 0.1, b1: 0.8, b2: 0.95, eps: 1e-6, t: 3 };
    const bt = batches[0];
    const feeds: Record<string, ort.Tensor> = {
      input: tensor('float32', bt.x, [bt.size, 1, 28, 28]),
      labels: tensor('int64', bt.y, [bt.size]),
      lr: tensor('float32', Float32Array.of(h.lr), []),
      step: tensor('float32', Float32Array.of(h.t), []),
      weight_decay: tensor('float32', Float32Array.of(h.wd), []),
      beta1: tensor('float32', Float32Array.of(h.b1), []),
      beta2: tensor('float32', Float32Array.of(h.b2), []),
      adam_eps: tensor('float32', Float32Array.of(h.eps), []),
    };
    for (const [n, p] of params) {
      const dims = gg.shapes.get(n)!;
      feeds[n] = tensor('float32', p, dims);
      feeds[stateName('m', n)] = tensor('float32', m0.get(n)!, dims);
      feeds[stateName('v', n)] = tensor('float32', v0.get(n)!, dims);
    }
    const out = await sess.run(feeds);
    const g = await gg.grads(params, bt);
    for (const [n, p] of params) {
      const ref = adamwRef(p, g.get(n)!, m0.get(n)!, v0.get(n)!, h);
      expectClose(`adamw ${n}`, out[ts.next[n]].data as Float32Array, ref.p, p);
      expectClose(`adamw m of ${n}`, out[ts.next[stateName('m', n)]].data as Float32Array, ref.m, m0.get(n)!);
      expectClose(`adamw v of ${n}`, out[ts.next[stateName('v', n)]].data as Float32Array, ref.v, v0.get(n)!);
    }
    expect(ts.next['fc1.weight']).to.equal(nextName('fc1.weight'));
  });

  it('graph level: two SGD steps (momentum 0.9, weight decay 0.05) equal torch.optim.SGD', async function () {
    const cfg = tinyMlp();
    const ts = buildNativeTrainStep(cfg, 'sgd');
    const sess = await createSession(encodeModel(ts.model), { threads: 1 });
    const gg = await gradientGraph(cfg);
    const h = { lr: 0.05, wd: 0.05, mu: 0.9 };
    let params: Params = new Map(ts.params.map((p) => [p.value.name, Float32Array.from(p.init)]));
    let bufs: Params | null = null;
    for (let step = 0; step < 2; step++) {
      const bt = batches[step];
      const feeds: Record<string, ort.Tensor> = {
        input: tensor('float32', bt.x, [bt.size, 1, 28, 28]),
        labels: tensor('int64', bt.y, [bt.size]),
        lr: tensor('float32', Float32Array.of(h.lr), []),
        weight_decay: tensor('float32', Float32Array.of(h.wd), []),
        momentum: tensor('float32', Float32Array.of(h.mu), []),
      };
      for (const [n, p] of params) {
        feeds[n] = tensor('float32', p, gg.shapes.get(n)!);
        feeds[stateName('momentum', n)] = tensor('float32', bufs ? bufs.get(n)! : new Float32Array(p.length), gg.shapes.get(n)!);
      }
      const out = await sess.run(feeds);
      const g = await gg.grads(params, bt);
      const nextParams: Params = new Map();
      const nextBufs: Params = new Map();
      for (const [n, p] of params) {
        const ref = sgdRef(p, g.get(n)!, bufs ? bufs.get(n)! : null, h);
        const got = out[ts.next[n]].data as Float32Array;
        const buf = out[ts.next[stateName('momentum', n)]].data as Float32Array;
        expectClose(`sgd step ${step + 1} ${n}`, got, ref.p, p);
        expectClose(`sgd step ${step + 1} momentum of ${n}`, buf, ref.buf, bufs ? bufs.get(n)! : new Float32Array(p.length));
        nextParams.set(n, Float32Array.from(got));
        nextBufs.set(n, Float32Array.from(buf));
      }
      params = nextParams;
      bufs = nextBufs;
    }
  });

  describe('trainer level (trainRun from initial.ckpt)', function () {
    let graphs: string;
    let cfg: RunConfig;
    let gg: Awaited<ReturnType<typeof gradientGraph>>;
    let p0: Params;

    before(async function () {
      graphs = path.join(root, 'g');
      await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '32,16', '--out', graphs]);
      cfg = tinyMlp();
      gg = await gradientGraph(cfg);
      p0 = checkpointTensors(path.join(graphs, 'initial.ckpt'));
      const init = new Map(buildGradientCore(cfg).params.map((p) => [p.value.name, p.init]));
      for (const [n, v] of p0) expect(Array.from(v), `initial.ckpt ${n} = the builder's init`).to.deep.equal(Array.from(init.get(n)!));
    });

    /** The batches the trainer draws in its first epoch (Rng(seed): permutation, then flips). */
    function trainerBatches(batch: number, seed: number, flip: boolean): Batch[] {
      const ds = loadFashionMnist(dataDir).train;
      return [...epochBatches(ds, { batchSize: batch, shuffle: true, rng: new Rng(seed), flip })];
    }

    it('one AdamW step (--batch 256: one step per epoch) equals torch.optim.AdamW at t = 1, and p₁ ≈ p₀(1 − lr·wd) − lr·sign(g) by hand', async function () {
      const run = path.join(root, 'r-adamw');
      const h = { lr: 0.002, wd: 0.3, b1: 0.9, b2: 0.999, eps: 1e-8, t: 1 };
      await trainRun(graphs, { run, data: dataDir, epochs: 1, batch: 256, lr: h.lr, weightDecay: h.wd, schedule: 'constant', seed: 4, threads: 1, progress: false, quiet: true });
      const [bt] = trainerBatches(256, 4, true);
      const g = await gg.grads(p0, bt);
      const p1 = checkpointTensors(path.join(run, 'last.ckpt'));
      const ck = readCheckpoint(path.join(run, 'last.ckpt'));
      expect(ck.optimizer!.step).to.equal(1);
      const moments = new Map(ck.optimizer!.states.map((s) => [s.paramName, s.momentums]));
      for (const [n, p] of p0) {
        const zero = new Float32Array(p.length);
        const ref = adamwRef(p, g.get(n)!, zero, zero, h);
        expectClose(`trainer adamw ${n}`, p1.get(n)!, ref.p, p);
        const [m, v] = moments.get(n)!;
        expect([m.name, v.name]).to.deep.equal(['momentum0', 'momentum1']);
        expectClose(`trainer adamw m of ${n}`, m.data, ref.m, zero);
        expectClose(`trainer adamw v of ${n}`, v.data, ref.v, zero);
      }
      // By hand, on the two entries of fc1.weight with the largest |g| (|g| ≫ eps, so g/(|g|+eps) = ±1).
      const gw = g.get('fc1.weight')!, w0 = p0.get('fc1.weight')!, w1 = p1.get('fc1.weight')!;
      const top = Array.from(gw.keys()).sort((a, b) => Math.abs(gw[b]) - Math.abs(gw[a])).slice(0, 2);
      for (const i of top) {
        expect(Math.abs(gw[i])).to.be.above(1e-4);
        const hand = w0[i] * (1 - 0.002 * 0.3) - 0.002 * Math.sign(gw[i]);
        expect(w1[i], `fc1.weight[${i}] by hand`).to.be.closeTo(hand, 1e-7);
      }
    });

    it('two SGD steps (--optimizer sgd on adamw graphs, --batch 128) equal torch.optim.SGD', async function () {
      const run = path.join(root, 'r-sgd');
      const h = { lr: 0.03, wd: 0.02, mu: 0.8 };
      await trainRun(graphs, { run, data: dataDir, epochs: 1, batch: 128, optimizer: 'sgd', lr: h.lr, weightDecay: h.wd, momentum: h.mu, schedule: 'constant', seed: 9, threads: 1, progress: false, quiet: true });
      const bts = trainerBatches(128, 9, true);
      expect(bts).to.have.length(2);
      // The reference takes both steps itself (float64 updates, rounded to float32 between steps, as
      // the trainer stores them), with gradients from the gradient graph at its own parameters.
      let p: Params = p0;
      let buf: Params | null = null;
      for (const bt of bts) {
        const g = await gg.grads(p, bt);
        const np: Params = new Map(), nb: Params = new Map();
        for (const [n, v] of p) {
          const r = sgdRef(v, g.get(n)!, buf ? buf.get(n)! : null, h);
          np.set(n, Float32Array.from(r.p));
          nb.set(n, Float32Array.from(r.buf));
        }
        p = np;
        buf = nb;
      }
      const p2 = checkpointTensors(path.join(run, 'last.ckpt'));
      const ck = readCheckpoint(path.join(run, 'last.ckpt'));
      expect(ck.optimizer!.step).to.equal(2);
      for (const [n, v] of p0) {
        const ref = Float64Array.from(p.get(n)!);
        // Two steps of float32: allow 1e-5 of the total movement on top of the per-step tolerance.
        const got = p2.get(n)!;
        for (let i = 0; i < v.length; i++) {
          const tol = 1e-6 * Math.abs(ref[i]) + 1e-4 * Math.abs(ref[i] - v[i]) + 1e-7;
          if (!(Math.abs(got[i] - ref[i]) <= tol)) expect.fail(`trainer sgd ${n}[${i}]: ${got[i]} vs ${ref[i]} (from ${v[i]})`);
        }
        const mom = ck.optimizer!.states.find((s) => s.paramName === n)!.momentums;
        expect(mom.map((x) => x.name)).to.deep.equal(['momentum0']);
        const rb = buf!.get(n)!;
        for (let i = 0; i < rb.length; i++) {
          const tol = 1e-5 * Math.abs(rb[i]) + 1e-7;
          if (!(Math.abs(mom[0].data[i] - rb[i]) <= tol)) expect.fail(`trainer sgd momentum of ${n}[${i}]: ${mom[0].data[i]} vs ${rb[i]}`);
        }
      }
    });
  });
});
