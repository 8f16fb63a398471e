/**
 * Small statistics for comparing two arms across seeds.
 *
 *   mean = Σx/k,  std = sqrt(Σ(x − mean)² / (k − 1))   (sample standard deviation; 0 seeds → NaN, 1 seed → NaN)
 *   spread = sqrt(std_a² + std_b²)                      (seed-to-seed spread of the difference of two means)
 *   paired t = mean(d) / (std(d) / sqrt(k)),  d_i = lj_i − base_i over the k shared seeds
 *
 * The verdict of an experiment: the difference "exceeds the spread" when |mean_lj − mean_base| > spread.
 * The paired t-statistic is reported beside it (k − 1 degrees of freedom) for readers who want a test.
 */

/** Arithmetic mean; NaN for an empty list. */
export function mean(xs: number[]): number {
  return xs.length ? xs.reduce((a, b) => a + b, 0) / xs.length : NaN;
}

/** Sample standard deviation (k − 1 in the denominator); NaN below two values. */
export function std(xs: number[]): number {
  if (xs.length < 2) return NaN;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((a, x) => a + (x - m) * (x - m), 0) / (xs.length - 1));
}

/** Paired t-statistic of b − a (same length, same seed order); NaN below two pairs, ±Infinity when every difference is equal and non-zero. */
export function pairedT(a: number[], b: number[]): number {
  if (a.length !== b.length) throw new Error(`pairedT: ${a.length} vs ${b.length} values`);
  const d = b.map((x, i) => x - a[i]);
  if (d.length < 2) return NaN;
  const m = mean(d), s = std(d);
  if (s === 0) return m === 0 ? 0 : m > 0 ? Infinity : -Infinity;
  return m / (s / Math.sqrt(d.length));
}

/** Two-sided 95% critical values of Student's t for 1..30 degrees of freedom (then the normal 1.96). */
const T95 = [12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228, 2.201, 2.179, 2.16, 2.145, 2.131, 2.12, 2.11, 2.101, 2.093, 2.086, 2.08, 2.074, 2.069, 2.064, 2.06, 2.056, 2.052, 2.048, 2.045, 2.042];

/** Two-sided 95% critical value of Student's t with `df` degrees of freedom. */
export function tCritical95(df: number): number {
  if (!(df >= 1)) return NaN;
  return df <= T95.length ? T95[Math.floor(df) - 1] : 1.96;
}

export interface ArmDiff {
  /** Mean and sample std of each arm (std NaN with one seed). */
  base: { mean: number; std: number };
  lj: { mean: number; std: number };
  /** mean_lj − mean_base. */
  diff: number;
  /** sqrt(std_base² + std_lj²); NaN with one seed. */
  spread: number;
  /** |diff| > spread; null with one seed (no spread to compare against). */
  exceedsSpread: boolean | null;
  /** Paired t of lj − base over seeds; NaN with one seed. */
  t: number;
}

/** Compares the per-seed values of two arms (same seed order). */
export function compareArms(base: number[], lj: number[]): ArmDiff {
  const b = { mean: mean(base), std: std(base) };
  const l = { mean: mean(lj), std: std(lj) };
  const spread = Math.sqrt(b.std * b.std + l.std * l.std);
  const diff = l.mean - b.mean;
  return { base: b, lj: l, diff, spread, exceedsSpread: Number.isFinite(spread) ? Math.abs(diff) > spread : null, t: pairedT(base, lj) };
}
