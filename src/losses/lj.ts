/**
 * Lennard-Jones potential loss on cosine distances (paper sec. 4, appendix E.2).
 *
 *   f̂ = f / max(‖f‖, 1e-12);  r = 1 − f̂ f̂ᵀ;  r_ii = σ (no gradient);  r = max(r, 1e-3)
 *   paper:    V = (σ/r)^{2n} − (σ/r)^n
 *   adaptive: V = (σ/r)^{2n} − cos θ · (σ/r)^n          (eq. 8; cos θ_ii taken as 1)
 *   L = ε · mean(min(V, clamp_max))   over all b·l·l entries, diagonal included
 *
 * Particles are the l rows of (b, l, d) features within each sample, or the b samples of (b, d)
 * features treated as (1, b, d).
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError, Value, shapeStr } from '../graph/types';
import { aInt } from '../graph/types';

export type LJVariant = 'paper' | 'adaptive';

export interface LJOptions {
  sigma: number;
  n: number;
  epsilon: number;
  clampMax: number;
  variant: LJVariant;
}

/** Defaults of the paper's listing (E.2). The image presets use σ = 0.5 (E.4). */
export const LJ_DEFAULTS: LJOptions = { sigma: 1, n: 6, epsilon: 0.1, clampMax: 5, variant: 'paper' };

/** Lower clamp of the cosine distance, as in the listing. */
export const R_MIN = 1e-3;
/** F.normalize's denominator floor. */
export const NORM_EPS = 1e-12;

/** Checks options, naming the bad one. */
export function validateLJOptions(o: Partial<LJOptions>): LJOptions {
  // Options left undefined take the defaults (a spread would let an explicit undefined through).
  const given = Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined));
  const r: LJOptions = { ...LJ_DEFAULTS, ...given };
  const bad = (k: string, v: unknown, why: string) => new GraphBuildError(`invalid LJ option ${k}=${String(v)}: ${why}`);
  if (!Number.isFinite(r.sigma) || r.sigma <= 0) throw bad('sigma', r.sigma, 'must be a number > 0');
  if (!Number.isFinite(r.n) || r.n <= 0) throw bad('n', r.n, 'must be a number > 0');
  if (!Number.isFinite(r.epsilon) || r.epsilon < 0) throw bad('epsilon', r.epsilon, 'must be a number >= 0');
  if (!Number.isFinite(r.clampMax) || r.clampMax <= 0) throw bad('clamp-max', r.clampMax, 'must be a number > 0');
  if (r.variant !== 'paper' && r.variant !== 'adaptive') throw bad('variant', r.variant, "must be 'paper' or 'adaptive'");
  return r;
}

/** x^n by repeated squaring for small integer n (measured faster than Pow on CPU), else Pow. */
function powN(b: GraphBuilder, x: Value, n: number): Value {
  if (!Number.isInteger(n) || n > 64) return b.pow(x, n);
  let result: Value | null = null;
  let base = x;
  let k = n;
  while (k > 0) {
    if (k & 1) result = result ? b.mul(result, base) : base;
    k >>= 1;
    if (k > 0) base = b.mul(base, base);
  }
  return result!;
}

/**
 * Emits the LJ loss subgraph on `features` and returns the scalar ε·L.
 * `particles`: 'tokens' for (b, l, d) features, 'batch' for (b, d) features.
 */
export function ljLoss(b: GraphBuilder, features: Value, options: Partial<LJOptions> = {}, particles: 'tokens' | 'batch' = 'tokens'): Value {
  const o = validateLJOptions(options);
  if (particles !== 'tokens' && particles !== 'batch') throw new GraphBuildError(`invalid LJ option particles=${String(particles)}: must be 'tokens' or 'batch'`);
  return b.scope('lj', () => {
    let f = features;
    if (particles === 'batch') {
      if (f.rank !== 2) throw new GraphBuildError(`lj: batch particles need (b, d) features, got ${f.name} ${shapeStr(f.shape)}`);
      f = b.unsqueeze(f, [0]);
    } else if (f.rank !== 3) {
      throw new GraphBuildError(`lj: token particles need (b, l, d) features, got ${f.name} ${shapeStr(f.shape)}`);
    }
    const L = f.shape[1];

    const norm = b.reduceL2(f, [-1], true);
    const fn = b.div(f, b.max(norm, NORM_EPS));
    const cos = b.matmul(fn, b.transpose(fn, [0, 2, 1])); // (b, l, l)
    const r = b.sub(1, cos);

    // Diagonal mask, static when l is known, else built from the run-time shape.
    let eye: Value;
    if (typeof L === 'number') {
      const m = new Array<number>(L * L).fill(0);
      for (let i = 0; i < L; i++) m[i * L + i] = 1;
      eye = b.cast(b.constant('float32', [L, L], m), 'bool');
    } else {
      const ll = b.slice(b.shapeOf(cos), [1], [3], [0]);
      const zeros = b.op('ConstantOfShape', [ll], {}, { shapes: [[L, L]], dtypes: ['float32'] });
      eye = b.cast(b.op('EyeLike', [zeros], { dtype: aInt(1) }), 'bool');
    }
    const rDiag = b.where(eye, o.sigma, r);

    // Overflow guard folded into the lower clamp of r. p* solves p² − p = clamp_max; for
    // s = σ/r beyond s_max = (p*+1)^(1/n) every variant's V is clamped anyway, so clamping r at
    // max(1e-3, σ/s_max) instead of 1e-3 changes neither value nor gradient (both are the clamped
    // constant and 0 there) but keeps (σ/r)^{2n} finite in float32 (torch overflows to inf and
    // back-propagates NaN there for large n). One Clip instead of two.
    const pStar = (1 + Math.sqrt(1 + 4 * o.clampMax)) / 2;
    const sMax = Math.pow(pStar + 1, 1 / o.n);
    const rc = b.clip(rDiag, Math.max(R_MIN, o.sigma / sMax), null);
    const s = b.div(o.sigma, rc);
    const pN = powN(b, s, o.n);
    // V = p² − a·p written as p·(p − a): one product fewer to differentiate (a = 1, or cos θ).
    const a = o.variant === 'adaptive' ? b.where(eye, 1, cos) : 1;
    const v = b.clip(b.mul(pN, b.sub(pN, a)), null, o.clampMax);
    const mean = b.reduceMean(v, null, false);
    return o.epsilon === 1 ? mean : b.mul(mean, o.epsilon);
  });
}
