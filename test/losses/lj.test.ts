/**
 * LJ loss (src/losses/lj.ts) against
 *   (a) float64 PyTorch golden values of the paper's listing (test/fixtures/lj-golden.json, made by
 *       tools/lj_golden.py), loss and d loss / d features from our backward() on onnxruntime-node;
 *   (b) an independent double-precision plain-loop implementation, with central-difference
 *       gradients, on random inputs through symbolic (run-time) shapes;
 *   (c) properties: ε linearity, the clamp_max bound, the identical-features closed form;
 *   (d) option validation.
 *
 * Tolerances (float32 graph vs float64 references; measured errors are far smaller):
 *   loss:     |ours − ref| ≤ 1e-6 + 2e-5·|ref|   (observed ≤ 7e-7 relative)
 *   gradient: per element, |ours − ref| ≤ 1e-7 + 1e-3·|ref| + 1e-4·rowScale, where rowScale is
 *             max |ref| over the d entries of the same feature vector. The row scale absorbs
 *             float32 cancellation in a sum over partners, and keeps a zero feature vector's
 *             gradient (∝ 1/1e-12, ~1e10) from loosening the check on the other rows.
 *             (observed ≤ 1.5e-5 of the row scale.)
 *   central differences (b): the same form with 1e-6 + 1e-3·|fd| + 1e-3·rowScale (h = 1e-5).
 * No golden case needs a looser tolerance: 'paper-near-identical-s1.5-n12' has (σ/r)^24 ~ 1e59..1e69,
 * which overflows float32 (the listing run in float32 torch back-propagates NaN there), but lj.ts
 * clips s = σ/r at s_max, past which V is clamped anyway, so it matches the float64 value exactly.
 * Random inputs are drawn away from the clamp kinks (r = 1e-3, V = clamp_max), where float32 and
 * float64 may legitimately fall on different sides; the golden generator does the same.
 */
import { expect } from 'chai';
import * as fs from 'fs';
import * as path from 'path';
import { GraphBuilder } from '../../src/graph/builder';
import { Shape, Value } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { LJOptions, LJVariant, NORM_EPS, R_MIN, ljLoss } from '../../src/losses/lj';
import { encodeModel } from '../../src/onnx/proto';
import { createSession, ort, tensor } from '../../src/runtime/session';

type Particles = 'tokens' | 'batch';

interface GoldenCase {
  name: string;
  variant: LJVariant;
  particles: Particles;
  sigma: number;
  n: number;
  epsilon: number;
  clampMax: number;
  shape: number[];
  offDiagPairs: number;
  clampedPairs: number;
  torchFloat32Finite: boolean;
  features: number[];
  loss: number;
  grad: number[];
  note?: string;
}

function fixturePath(): string {
  const rel = path.join('test', 'fixtures', 'lj-golden.json');
  let dir = __dirname;
  for (let i = 0; i < 6; i++) {
    const p = path.join(dir, rel);
    if (fs.existsSync(p)) return p;
    dir = path.dirname(dir);
  }
  return path.resolve(rel);
}

const GOLDEN: GoldenCase[] = JSON.parse(fs.readFileSync(fixturePath(), 'utf8')).cases;

// ---------------------------------------------------------------- graph building and running

interface LJGraph {
  b: GraphBuilder;
  x: Value;
}

function buildLJ(shape: Shape, o: Partial<LJOptions>, particles: Particles): LJGraph {
  const b = new GraphBuilder();
  const x = b.input('features', 'float32', shape);
  const loss = ljLoss(b, x, o, particles);
  const [g] = backward(b, loss, [x]);
  expect(g, 'features get a gradient').to.not.equal(null);
  b.output(loss, 'loss');
  b.output(g!, 'features_grad');
  return { b, x };
}

/** One session per graph; feeds take concrete dims, so symbolic inputs can vary between runs. */
async function sessionFor(g: LJGraph, graphOptimization: 'all' | 'disabled' = 'all') {
  const sess = await createSession(encodeModel(g.b.toModel()), { threads: 1, graphOptimization });
  return async (features: ArrayLike<number>, dims: number[]) => {
    const out = await sess.run({ features: tensor('float32', Float32Array.from(features), dims) });
    const loss = out.loss as ort.Tensor;
    const grad = out.features_grad as ort.Tensor;
    expect(loss.dims.length, 'loss is a scalar').to.equal(0);
    expect(Array.from(grad.dims), 'gradient has the features shape').to.deep.equal(dims);
    return { loss: Number((loss.data as Float32Array)[0]), grad: Float64Array.from(grad.data as Float32Array) };
  };
}

async function runLJ(shape: Shape, dims: number[], o: Partial<LJOptions>, particles: Particles, features: ArrayLike<number>, opt: 'all' | 'disabled' = 'all') {
  return (await sessionFor(buildLJ(shape, o, particles), opt))(features, dims);
}

// ---------------------------------------------------------------- comparisons

function expectFinite(what: string, xs: ArrayLike<number>): void {
  for (let i = 0; i < xs.length; i++) if (!Number.isFinite(xs[i])) expect.fail(`${what}[${i}] = ${xs[i]} is not finite`);
}

function expectLossClose(what: string, ours: number, ref: number): void {
  const tol = 1e-6 + 2e-5 * Math.abs(ref);
  expect(Math.abs(ours - ref), `${what}: loss ${ours} vs ${ref} (tol ${tol.toExponential(2)})`).to.be.at.most(tol);
}

/** Per-element check with a per-feature-vector scale (rows of length d = the last dim). */
function expectGradClose(what: string, ours: ArrayLike<number>, ref: ArrayLike<number>, d: number, t: { atol: number; rtol: number; rowTol: number }): void {
  expect(ours.length, `${what}: gradient length`).to.equal(ref.length);
  for (let row = 0; row * d < ref.length; row++) {
    let scale = 0;
    for (let k = 0; k < d; k++) scale = Math.max(scale, Math.abs(ref[row * d + k]));
    for (let k = 0; k < d; k++) {
      const i = row * d + k;
      const tol = t.atol + t.rtol * Math.abs(ref[i]) + t.rowTol * scale;
      const err = Math.abs(ours[i] - ref[i]);
      if (!(err <= tol)) expect.fail(`${what}: grad[${i}] (row ${row}) ${ours[i]} vs ${ref[i]}, |err| ${err.toExponential(3)} > tol ${tol.toExponential(3)}`);
    }
  }
}

const GOLDEN_GRAD_TOL = { atol: 1e-7, rtol: 1e-3, rowTol: 1e-4 };
const FD_GRAD_TOL = { atol: 1e-6, rtol: 1e-3, rowTol: 1e-3 };

// ---------------------------------------------------------------- double-precision reference

/** Layout of features as (B, L, D) particles. */
function layout(dims: number[], particles: Particles): [number, number, number] {
  return particles === 'batch' ? [1, dims[0], dims[1]] : [dims[0], dims[1], dims[2]];
}

function normalizedRows(f: ArrayLike<number>, rows: number, D: number): Float64Array {
  const out = new Float64Array(rows * D);
  for (let i = 0; i < rows; i++) {
    let ss = 0;
    for (let k = 0; k < D; k++) ss += f[i * D + k] * f[i * D + k];
    const den = Math.max(Math.sqrt(ss), NORM_EPS);
    for (let k = 0; k < D; k++) out[i * D + k] = f[i * D + k] / den;
  }
  return out;
}

/** Visits every (sample, i, j) with cos and the clamped r, straight from the formula. */
function forPairs(f: ArrayLike<number>, dims: number[], particles: Particles, sigma: number, fn: (i: number, j: number, cos: number, r: number, rRaw: number) => void): void {
  const [B, L, D] = layout(dims, particles);
  const fh = normalizedRows(f, B * L, D);
  for (let s = 0; s < B; s++) {
    for (let i = 0; i < L; i++) {
      for (let j = 0; j < L; j++) {
        let cos = 0;
        for (let k = 0; k < D; k++) cos += fh[(s * L + i) * D + k] * fh[(s * L + j) * D + k];
        const rRaw = i === j ? sigma : 1 - cos;
        fn(i, j, cos, Math.max(rRaw, R_MIN), rRaw);
      }
    }
  }
}

function potential(o: LJOptions, i: number, j: number, cos: number, r: number): number {
  const p = Math.pow(o.sigma / r, o.n);
  const c = o.variant === 'adaptive' ? (i === j ? 1 : cos) : 1;
  return p * p - c * p;
}

/** ε · mean(min(V, clamp_max)) in float64 with plain loops. */
function ljRef(f: ArrayLike<number>, dims: number[], o: LJOptions, particles: Particles): number {
  const [B, L] = layout(dims, particles);
  let sum = 0;
  forPairs(f, dims, particles, o.sigma, (i, j, cos, r) => (sum += Math.min(potential(o, i, j, cos, r), o.clampMax)));
  return (o.epsilon * sum) / (B * L * L);
}

/** Relative distance of the nearest off-diagonal pair to a clamp kink (r = R_MIN or V = clamp_max). */
function kinkDistance(f: ArrayLike<number>, dims: number[], o: LJOptions, particles: Particles): number {
  let m = Infinity;
  forPairs(f, dims, particles, o.sigma, (i, j, cos, r, rRaw) => {
    if (i === j) return;
    m = Math.min(m, Math.abs(rRaw - R_MIN) / R_MIN, Math.abs(potential(o, i, j, cos, r) - o.clampMax) / o.clampMax);
  });
  return m;
}

function centralDiff(f: Float64Array, dims: number[], o: LJOptions, particles: Particles, h = 1e-5): Float64Array {
  const g = new Float64Array(f.length);
  const x = Float64Array.from(f);
  for (let i = 0; i < f.length; i++) {
    x[i] = f[i] + h;
    const up = ljRef(x, dims, o, particles);
    x[i] = f[i] - h;
    const down = ljRef(x, dims, o, particles);
    x[i] = f[i];
    g[i] = (up - down) / (2 * h);
  }
  return g;
}

/** Deterministic normal draws (mulberry32 + Box–Muller), rounded to float32 so both sides see the same input. */
function randn(seed: number, count: number): Float64Array {
  let a = seed >>> 0;
  const u = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = new Float64Array(count);
  for (let i = 0; i < count; i++) out[i] = Math.fround(Math.sqrt(-2 * Math.log(1 - u())) * Math.cos(2 * Math.PI * u()));
  return out;
}

/** Random features at least 2% (relative) away from every clamp kink, so central differences are smooth. */
function drawAdmissible(seed: number, dims: number[], o: LJOptions, particles: Particles): Float64Array {
  const count = dims.reduce((p, q) => p * q, 1);
  for (let attempt = 0; attempt < 10000; attempt++) {
    const f = randn(seed * 100003 + attempt, count);
    if (kinkDistance(f, dims, o, particles) > 0.02) return f;
  }
  throw new Error(`no admissible draw for seed ${seed}`);
}

// ---------------------------------------------------------------- tests

describe('losses/lj', function () {
  this.timeout(60000);

  describe('(a) float64 PyTorch golden values (tools/lj_golden.py)', () => {
    it('fixture covers both variants, both layouts, σ ∈ {0.5, 1, 1.5}, n ∈ {2, 6, 12} and the edge cases', () => {
      const has = (p: (c: GoldenCase) => boolean) => GOLDEN.some(p);
      expect(has((c) => c.variant === 'paper') && has((c) => c.variant === 'adaptive')).to.equal(true);
      expect(has((c) => c.particles === 'tokens') && has((c) => c.particles === 'batch')).to.equal(true);
      for (const s of [0.5, 1, 1.5]) expect(has((c) => c.sigma === s), `sigma ${s}`).to.equal(true);
      for (const n of [2, 6, 12]) expect(has((c) => c.n === n), `n ${n}`).to.equal(true);
      for (const k of ['identical', 'zero-vector', 'clusters', 'orthogonal-opposite', 'near-identical']) expect(has((c) => c.name.includes(k)), k).to.equal(true);
      // Some cases clamp only part of their pairs; some overflow float32 torch.
      expect(has((c) => c.clampedPairs > 0 && c.clampedPairs < c.offDiagPairs)).to.equal(true);
      expect(has((c) => !c.torchFloat32Finite)).to.equal(true);
    });

    for (const c of GOLDEN) {
      it(`${c.name} ${JSON.stringify(c.shape)}${c.torchFloat32Finite ? '' : ' (float32 torch gives NaN here)'}`, async () => {
        const o = { sigma: c.sigma, n: c.n, epsilon: c.epsilon, clampMax: c.clampMax, variant: c.variant };
        // ORT's graph optimisations (fusions) must not change the numbers beyond the tolerances.
        for (const opt of ['all', 'disabled'] as const) {
          const what = `${c.name} (optimization ${opt})`;
          const got = await runLJ(c.shape, c.shape, o, c.particles, c.features, opt);
          expectFinite(`${what} loss`, [got.loss]);
          expectFinite(`${what} grad`, got.grad);
          expectLossClose(what, got.loss, c.loss);
          expectGradClose(what, got.grad, c.grad, c.shape[c.shape.length - 1], GOLDEN_GRAD_TOL);
          // Every pair at a clamp (identical features): the gradient is exactly 0, here as in torch.
          if (c.grad.every((g) => g === 0)) expect(Array.from(got.grad).every((g) => g === 0), `${what}: zero gradient`).to.equal(true);
        }
      });
    }

    it('the float64 reference agrees with the independent double implementation (fixture sanity)', () => {
      for (const c of GOLDEN) {
        const o: LJOptions = { sigma: c.sigma, n: c.n, epsilon: c.epsilon, clampMax: c.clampMax, variant: c.variant };
        const v = ljRef(c.features, c.shape, o, c.particles);
        expect(Math.abs(v - c.loss), c.name).to.be.at.most(1e-12 + 1e-9 * Math.abs(c.loss));
      }
    });
  });

  describe('(b) independent double-precision implementation, central differences, run-time shapes', () => {
    const OPTS: LJOptions[] = [
      { sigma: 1, n: 6, epsilon: 0.1, clampMax: 5, variant: 'paper' },
      { sigma: 1, n: 6, epsilon: 0.1, clampMax: 5, variant: 'adaptive' },
      { sigma: 0.5, n: 12, epsilon: 1, clampMax: 10, variant: 'paper' },
      { sigma: 1.5, n: 2, epsilon: 0.5, clampMax: 50, variant: 'adaptive' },
    ];
    // [graph input shape, concrete dims fed on successive seeds]
    const LAYOUTS: { particles: Particles; shape: Shape; feeds: number[][]; what: string }[] = [
      { particles: 'tokens', shape: ['batch', 5, 4], feeds: [[2, 5, 4], [3, 5, 4], [1, 5, 4]], what: "['batch', 5, 4]: static diagonal" },
      { particles: 'tokens', shape: ['batch', 'seq', 3], feeds: [[2, 4, 3], [1, 6, 3], [3, 3, 3]], what: "['batch', 'seq', 3]: EyeLike diagonal" },
      { particles: 'batch', shape: ['batch', 4], feeds: [[6, 4], [5, 4], [3, 4]], what: "['batch', 4]: EyeLike diagonal" },
    ];
    for (const o of OPTS) {
      for (const lay of LAYOUTS) {
        it(`${o.variant} σ=${o.sigma} n=${o.n} ε=${o.epsilon} clamp=${o.clampMax}, ${lay.particles} ${lay.what}`, async () => {
          const run = await sessionFor(buildLJ(lay.shape, o, lay.particles));
          for (let k = 0; k < lay.feeds.length; k++) {
            const dims = lay.feeds[k];
            const f = drawAdmissible(1000 * k + 17 * o.n + Math.round(10 * o.sigma) + (o.variant === 'adaptive' ? 7 : 0), dims, o, lay.particles);
            const got = await run(f, dims);
            const what = `seed ${k} dims ${JSON.stringify(dims)}`;
            expectFinite(`${what} grad`, got.grad);
            expectLossClose(what, got.loss, ljRef(f, dims, o, lay.particles));
            expectGradClose(what, got.grad, centralDiff(f, dims, o, lay.particles), dims[dims.length - 1], FD_GRAD_TOL);
          }
        });
      }
    }
  });

  describe('(c) properties', () => {
    const dims = [2, 5, 4];
    const f = drawAdmissible(4242, dims, { sigma: 1, n: 6, epsilon: 1, clampMax: 5, variant: 'paper' }, 'tokens');

    for (const variant of ['paper', 'adaptive'] as const) {
      it(`${variant}: the loss and its gradient are linear in ε`, async () => {
        const base = { sigma: 1, n: 6, clampMax: 5, variant };
        const one = await runLJ(dims, dims, { ...base, epsilon: 1 }, 'tokens', f);
        expect(Math.abs(one.loss)).to.be.above(1e-3);
        for (const eps of [0, 0.1, 2.5]) {
          const got = await runLJ(dims, dims, { ...base, epsilon: eps }, 'tokens', f);
          expectLossClose(`ε=${eps}`, got.loss, eps * one.loss);
          expectGradClose(`ε=${eps}`, got.grad, Array.from(one.grad, (g) => eps * g), 4, { atol: 1e-9, rtol: 1e-5, rowTol: 1e-6 });
        }
      });
    }

    it('loss ≤ ε·clamp_max·(l²−l)/l² ≤ ε·clamp_max (diagonal terms are 0), for crowded and spread features', async () => {
      for (const variant of ['paper', 'adaptive'] as const) {
        for (const [sigma, n, clampMax] of [[1.5, 12, 5], [1, 6, 0.5], [0.5, 2, 3]]) {
          const o = { sigma, n, epsilon: 0.3, clampMax, variant };
          // Crowded: small perturbations of one direction, so most pairs sit at the clamp.
          const crowd = Array.from(randn(7, 2 * 6 * 3), (z, i) => (i % 3 === 0 ? 1 : 0) + 0.01 * z);
          for (const feats of [crowd, Array.from(randn(8, 2 * 6 * 3))]) {
            const got = await runLJ([2, 6, 3], [2, 6, 3], o, 'tokens', feats);
            expectFinite('grad', got.grad);
            const bound = (o.epsilon * clampMax * (36 - 6)) / 36;
            expect(got.loss, `${variant} σ=${sigma} n=${n}`).to.be.at.most(bound * (1 + 1e-6));
            expect(got.loss).to.be.at.most(o.epsilon * clampMax);
          }
        }
      }
    });

    // Identical rows: off-diagonal r = 0 → clamped to 1e-3 → V = (1000σ)^{2n} − (1000σ)^n ≥ clamp_max
    // → clamp_max; diagonal r = σ → V = 1^{2n} − 1^n = 0. Mean over l² entries per sample:
    // ε·(clamp_max·(l²−l) + 0·l)/l², e.g. l = 5, ε = 0.1, clamp_max = 5: 0.1·5·20/25 = 0.4.
    // Every term is at a clamp, so the gradient is exactly 0.
    for (const [sigma, n, eps, clampMax, l] of [[1, 6, 0.1, 5, 5], [1.5, 12, 1, 5, 4], [0.5, 2, 0.25, 2, 7]]) {
      it(`identical features (σ=${sigma}, n=${n}, ε=${eps}, clamp=${clampMax}, l=${l}): loss = ε·clamp_max·(l²−l)/l², zero gradient`, async () => {
        const expected = (eps * (clampMax * (l * l - l) + 0 * l)) / (l * l);
        if (sigma === 1 && n === 6 && eps === 0.1 && clampMax === 5 && l === 5) expect(expected).to.be.closeTo(0.4, 1e-15);
        const dir = [0.3, -1.2, 0.7];
        const scales = [1, 2, 0.5, 4, 0.25, 8, 3];
        const feats: number[] = [];
        for (let s = 0; s < 2; s++) for (let i = 0; i < l; i++) for (const v of dir) feats.push((s === 0 ? v : -v) * scales[i]);
        for (const variant of ['paper', 'adaptive'] as const) {
          const o = { sigma, n, epsilon: eps, clampMax, variant };
          expect(ljRef(feats, [2, l, 3], o, 'tokens')).to.be.closeTo(expected, 1e-12);
          // Static shape and run-time shapes (EyeLike) alike; batch particles too.
          for (const [shape, dims, particles, ff] of [
            [[2, l, 3], [2, l, 3], 'tokens', feats],
            [['batch', 'seq', 3], [2, l, 3], 'tokens', feats],
            [['batch', 3], [l, 3], 'batch', feats.slice(0, l * 3)],
          ] as [Shape, number[], Particles, number[]][]) {
            const got = await runLJ(shape, dims, o, particles, ff);
            expectLossClose(`${variant} ${JSON.stringify(shape)}`, got.loss, expected);
            expect(Array.from(got.grad).every((g) => g === 0), `${variant} ${JSON.stringify(shape)}: zero gradient`).to.equal(true);
          }
        }
      });
    }
  });

  describe('(d) option validation', () => {
    const b = () => new GraphBuilder();
    const tokens = (g: GraphBuilder) => g.input('features', 'float32', [2, 5, 4]);
    const cases: [string, Partial<LJOptions>, RegExp][] = [
      ['n = 0', { n: 0 }, /\bn\b/],
      ['n < 0', { n: -6 }, /\bn\b/],
      ['n NaN', { n: NaN }, /\bn\b/],
      ['σ = 0', { sigma: 0 }, /sigma/],
      ['σ < 0', { sigma: -1 }, /sigma/],
      ['clampMax = 0', { clampMax: 0 }, /clamp-?max/i],
      ['clampMax < 0', { clampMax: -5 }, /clamp-?max/i],
      ['ε < 0', { epsilon: -0.1 }, /epsilon/],
      ['unknown variant', { variant: 'repulsive' as LJVariant }, /variant/],
    ];
    for (const [what, o, re] of cases) {
      it(`${what} throws naming the option`, () => {
        const g1 = b();
        expect(() => ljLoss(g1, tokens(g1), o)).to.throw(re);
        const g2 = b();
        expect(() => ljLoss(g2, tokens(g2), o)).to.throw(/invalid LJ option/);
      });
    }
    it('wrong feature rank throws naming the features and the expected layout', () => {
      const g = b();
      expect(() => ljLoss(g, g.input('f2', 'float32', [6, 4]), {}, 'tokens')).to.throw(/token particles.*f2/);
      expect(() => ljLoss(g, g.input('f4', 'float32', [2, 3, 5, 4]), {}, 'tokens')).to.throw(/token particles.*f4/);
      expect(() => ljLoss(g, g.input('f3', 'float32', [2, 5, 4]), {}, 'batch')).to.throw(/batch particles.*f3/);
    });
    it('an unknown particles layout throws', () => {
      const g = b();
      expect(() => ljLoss(g, tokens(g), {}, 'pixels' as Particles)).to.throw(/invalid LJ option particles=pixels/);
    });
  });
});
