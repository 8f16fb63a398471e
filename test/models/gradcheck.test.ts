/**
 * Whole-model gradient check in float32 through onnxruntime-node: the gradient core of a tiny MLP
 * and a tiny ViT (forward + cross-entropy + ε·LJ, backward() w.r.t. every parameter; built by
 * buildGradientCore, as the train step is) against central differences of the same graph's loss.
 *
 *  - directional, total loss: for every parameter tensor p and a seeded random unit direction u,
 *        (L(p + h u) − L(p − h u)) / 2h  ≈  <dL/dp, (p⁺ − p⁻)/2h>      (p± as actually fed, float32)
 *  - directional, LJ part alone: the same with the graph's ε·LJ output, against
 *        dL/dp − dCE/dp  (the gradient of the same model built with --no-lj; same init seed)
 *  - elementwise: the 3 entries of largest |gradient| of three parameters, one at a time.
 *
 * Tolerance: |fd − analytic| ≤ 5e-4 + 2e-2 · max(|fd|, |analytic|), h = 1e-2. The loss (~2.5) is
 * float32: its rounding (~3e-7 plus the forward's own accumulation) becomes ~1e-4 in a difference
 * quotient with h = 1e-2; the curvature error is O(h²). Observed errors are printed below the test.
 *
 * The check point is moved off the LJ clamp kinks: at the builder's init the tiny models' features
 * are nearly parallel (ViT cls/pos embeddings are N(0, 0.02²); the MLP's ReLU features all positive),
 * so many pairs sit at V = clamp_max or r = 1e-3, where the loss is not differentiable and central
 * differences straddle kinks. We feed N(0, 1) cls/pos embeddings (ViT) and N(0, 0.25) fc2 weights
 * (MLP), pick σ so that every pair is well inside the smooth part, and assert that margin.
 */
import { expect } from 'chai';
import { RunConfig, loadPreset, validateConfig } from '../../src/config';
import { buildGradientCore, ljAttach } from '../../src/artifacts/graphs';
import { Rng } from '../../src/graph/rng';
import { R_MIN } from '../../src/losses/lj';
import { encodeModel } from '../../src/onnx/proto';
import { createSession, ort, tensor } from '../../src/runtime/session';

const H = 1e-2;
const ATOL = 5e-4;
const RTOL = 2e-2;
const BATCH = 6;

function tinyConfig(kind: 'mlp' | 'vit', lj: boolean): RunConfig {
  const cfg = loadPreset(kind === 'mlp' ? 'mlp-fmnist' : 'vit-tiny-fmnist');
  if (cfg.model.type === 'mlp') cfg.model.hidden = [12, 32];
  else Object.assign(cfg.model, { dim: 16, depth: 1, heads: 2, patch: 7, mlpRatio: 2 });
  cfg.lj.enabled = lj;
  cfg.lj.epsilon = 1;
  cfg.lj.sigma = kind === 'mlp' ? 0.15 : 0.3;
  return validateConfig(cfg);
}

interface RunOut {
  loss: number;
  lj: number;
  grads: Map<string, Float32Array>;
  feat: ort.Tensor | null;
}

interface GradGraph {
  run: (params: Map<string, Float32Array>) => Promise<RunOut>;
  init: Map<string, Float32Array>;
}

async function gradGraph(cfg: RunConfig): Promise<GradGraph> {
  const core = buildGradientCore(cfg);
  const { b } = core;
  b.output(core.loss, 'total_loss');
  if (core.lj) {
    b.output(core.lj, 'lj_part');
    b.output(ljAttach(cfg, core.model).feature, 'lj_features');
  }
  core.trainable.forEach((p, i) => b.output(core.grads[i], `dL.${p.value.name}`));
  const sess = await createSession(encodeModel(b.toModel({ paramsAsInputs: true })), { threads: 1 });
  const rng = new Rng(11);
  const [C, Hh, W] = cfg.model.image;
  const x = Float32Array.from({ length: BATCH * C * Hh * W }, () => rng.normal());
  const y = BigInt64Array.from({ length: BATCH }, (_, i) => BigInt((i * 3 + 1) % cfg.model.classes));
  const shapes = new Map(core.params.map((p) => [p.value.name, p.value.shape as number[]]));
  // The check point: init, with the embeddings / last-layer weights spread out (see the header).
  const pr = new Rng(99);
  const init = new Map(
    core.params.map((p) => {
      const n = p.value.name;
      if (n === 'pos_embed' || n === 'cls_token') return [n, Float32Array.from(p.init, () => pr.normal())];
      if (n === 'fc2.weight') return [n, Float32Array.from(p.init, () => 0.5 * pr.normal())];
      return [n, Float32Array.from(p.init)];
    }),
  );
  return {
    init,
    run: async (params) => {
      const feeds: Record<string, ort.Tensor> = { input: tensor('float32', x, [BATCH, C, Hh, W]), labels: tensor('int64', y, [BATCH]) };
      for (const [n, d] of params) feeds[n] = tensor('float32', d, shapes.get(n)!);
      const out = await sess.run(feeds);
      const grads = new Map(core.trainable.map((p) => [p.value.name, out[`dL.${p.value.name}`].data as Float32Array]));
      return { loss: (out.total_loss.data as Float32Array)[0], lj: out.lj_part ? (out.lj_part.data as Float32Array)[0] : 0, grads, feat: out.lj_features ?? null };
    },
  };
}

/** Smallest off-diagonal cosine distance among the LJ particles ((b, l, d) tokens or (b, d) samples). */
function minCosDistance(t: ort.Tensor): number {
  const f = t.data as Float32Array;
  const [B, L, D] = t.dims.length === 3 ? (t.dims as number[]) : [1, t.dims[0], t.dims[1]];
  let rMin = Infinity;
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < L; i++) {
      for (let j = i + 1; j < L; j++) {
        let dot = 0, ni = 0, nj = 0;
        for (let k = 0; k < D; k++) {
          const u = f[(b * L + i) * D + k], v = f[(b * L + j) * D + k];
          dot += u * v;
          ni += u * u;
          nj += v * v;
        }
        rMin = Math.min(rMin, 1 - dot / Math.sqrt(ni * nj));
      }
    }
  }
  return rMin;
}

interface Stats {
  checks: number;
  maxErr: number;
  maxRel: number;
}

function check(s: Stats, what: string, fd: number, an: number): void {
  const err = Math.abs(fd - an);
  const scale = Math.max(Math.abs(fd), Math.abs(an));
  const tol = ATOL + RTOL * scale;
  if (!(err <= tol)) expect.fail(`${what}: central difference ${fd} vs backward ${an}, |err| ${err.toExponential(3)} > tol ${tol.toExponential(3)}`);
  s.checks++;
  s.maxErr = Math.max(s.maxErr, err);
  if (scale > 1e-2) s.maxRel = Math.max(s.maxRel, err / scale);
}

async function gradientCheck(kind: 'mlp' | 'vit'): Promise<Stats> {
  const cfg = tinyConfig(kind, true);
  const g = await gradGraph(cfg);
  const ce = await gradGraph(tinyConfig(kind, false));
  const base = await g.run(g.init);
  const ceBase = await ce.run(g.init);
  expect(base.lj, `${kind}: the LJ term is active`).to.not.equal(0);
  expect(Math.abs(base.loss - ceBase.loss - base.lj), `${kind}: loss = CE + LJ`).to.be.below(1e-5);

  // Every particle pair in the smooth part: r ≥ 10·R_MIN and V(r) ≤ clamp_max / 2 (paper form).
  const rMin = minCosDistance(base.feat!);
  const sMax = cfg.lj.sigma / rMin;
  const vMax = Math.pow(sMax, 2 * cfg.lj.n) - Math.pow(sMax, cfg.lj.n);
  expect(rMin, `${kind}: smallest cosine distance`).to.be.above(10 * R_MIN);
  expect(vMax, `${kind}: largest pair potential (clamp at ${cfg.lj.clampMax})`).to.be.below(cfg.lj.clampMax / 2);

  const s: Stats = { checks: 0, maxErr: 0, maxRel: 0 };
  const rng = new Rng(5);
  let ljShare = 0;
  for (const [name, p] of g.init) {
    const grad = base.grads.get(name)!;
    const ceGrad = ceBase.grads.get(name)!;
    const u = Float32Array.from(p, () => rng.normal());
    let un = 0;
    for (const v of u) un += v * v;
    un = Math.sqrt(un);
    const plus = Float32Array.from(p, (v, i) => v + (H * u[i]) / un);
    const minus = Float32Array.from(p, (v, i) => v - (H * u[i]) / un);
    let an = 0, anLj = 0;
    for (let i = 0; i < p.length; i++) {
      const d = (plus[i] - minus[i]) / (2 * H);
      an += grad[i] * d;
      anLj += (grad[i] - ceGrad[i]) * d;
    }
    const rp = await g.run(new Map(g.init).set(name, plus));
    const rm = await g.run(new Map(g.init).set(name, minus));
    check(s, `${kind} ${name} (direction, total loss)`, (rp.loss - rm.loss) / (2 * H), an);
    check(s, `${kind} ${name} (direction, LJ part)`, (rp.lj - rm.lj) / (2 * H), anLj);
    ljShare = Math.max(ljShare, Math.abs(anLj) / Math.max(Math.abs(an), 1e-12));
  }
  expect(ljShare, `${kind}: the LJ part is a sizeable share of some directional derivative`).to.be.above(0.1);

  const names = [...g.init.keys()];
  for (const name of [names[0], names[Math.floor(names.length / 2)], names[names.length - 1]]) {
    const grad = base.grads.get(name)!;
    const idx = Array.from(grad.keys()).sort((a, c) => Math.abs(grad[c]) - Math.abs(grad[a])).slice(0, 3);
    for (const i of idx) {
      const p = g.init.get(name)!;
      const plus = Float32Array.from(p), minus = Float32Array.from(p);
      plus[i] += H;
      minus[i] -= H;
      const lp = (await g.run(new Map(g.init).set(name, plus))).loss;
      const lm = (await g.run(new Map(g.init).set(name, minus))).loss;
      check(s, `${kind} ${name}[${i}]`, (lp - lm) / (plus[i] - minus[i]), grad[i]);
    }
  }
  return s;
}

describe('models: whole-model gradient check (float32, central differences through onnxruntime)', function () {
  this.timeout(120000);

  it('tiny MLP (784-12-32-10, LJ on hidden, batch particles): backward() matches central differences', async function () {
    const s = await gradientCheck('mlp');
    expect(s.checks).to.be.greaterThan(15);
    this.test!.title += ` [${s.checks} checks, max |err| ${s.maxErr.toExponential(1)}, max rel ${s.maxRel.toExponential(1)}]`;
  });

  it('tiny ViT (patch 7, dim 16, depth 1, 2 heads, LJ on tokens): backward() matches central differences', async function () {
    const s = await gradientCheck('vit');
    expect(s.checks).to.be.greaterThan(40);
    this.test!.title += ` [${s.checks} checks, max |err| ${s.maxErr.toExponential(1)}, max rel ${s.maxRel.toExponential(1)}]`;
  });
});
