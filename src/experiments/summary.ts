/**
 * Turns run metrics into the paper's table numbers (Tables 1–4): Train Acc, Test Acc, Max Test Acc of
 * the baseline, the LJ values with the difference in parentheses, and Δt, LJ's extra training time.
 *
 *   Train Acc     accuracy on the (augmented) training batches during the last epoch
 *   Test Acc      test accuracy after the last epoch
 *   Max Test Acc  best test accuracy after any epoch
 *   Δt            100 · (t_LJ / t_base − 1), t = training seconds per sample of the run's fastest epoch
 *                 (1 / max samples_per_s: the epoch least slowed by other load on the machine; evaluation
 *                 excluded, it is the same graph for both arms)
 */
import type { EpochMetrics } from '../train/metrics';
import { ArmDiff, compareArms, mean, std, tCritical95 } from './stats';

export type TableMetric = 'train_acc' | 'test_acc' | 'max_test_acc';
export const TABLE_METRICS: { key: TableMetric; label: string }[] = [
  { key: 'train_acc', label: 'Train Acc' },
  { key: 'test_acc', label: 'Test Acc' },
  { key: 'max_test_acc', label: 'Max Test Acc' },
];

/** The end-of-run numbers of one run, accuracies in percent. */
export interface RunNumbers {
  epochs: number;
  train_acc: number;
  test_acc: number;
  max_test_acc: number;
  /** Training seconds per sample of the fastest epoch (1 / samplesPerS). */
  secPerSample: number;
  /** Mean wall seconds per epoch (training + evaluation). */
  epochSeconds: number;
  /** Training throughput of the fastest epoch. */
  samplesPerS: number;
}

export function runNumbers(metrics: EpochMetrics[]): RunNumbers {
  if (!metrics.length) throw new Error('no metrics');
  const last = metrics[metrics.length - 1];
  const samplesPerS = Math.max(...metrics.map((m) => m.samples_per_s));
  return {
    epochs: last.epoch,
    train_acc: 100 * last.train_acc,
    test_acc: 100 * last.test_acc,
    max_test_acc: 100 * Math.max(...metrics.map((m) => m.test_acc)),
    secPerSample: 1 / samplesPerS,
    epochSeconds: mean(metrics.map((m) => m.epoch_seconds)),
    samplesPerS,
  };
}

/** Δt in percent of one seed: LJ's training time per sample over the baseline's. */
export function deltaT(base: RunNumbers, lj: RunNumbers): number {
  return 100 * (lj.secPerSample / base.secPerSample - 1);
}

export interface PairSummary {
  seeds: number;
  metrics: Record<TableMetric, ArmDiff>;
  /** Δt per seed, its mean and std (percent). */
  dt: { perSeed: number[]; mean: number; std: number };
}

/** Summarises the per-seed numbers of a baseline and an LJ arm (same seed order). */
export function summarizePair(base: RunNumbers[], lj: RunNumbers[]): PairSummary {
  const metrics = {} as Record<TableMetric, ArmDiff>;
  for (const { key } of TABLE_METRICS) metrics[key] = compareArms(base.map((r) => r[key]), lj.map((r) => r[key]));
  const perSeed = base.map((b, i) => deltaT(b, lj[i]));
  return { seeds: base.length, metrics, dt: { perSeed, mean: mean(perSeed), std: std(perSeed) } };
}

const f2 = (x: number) => x.toFixed(2);
const signed = (x: number) => (x >= 0 ? '+' : '') + x.toFixed(2);

/** "85.10" or, with a spread, "85.10 ± 0.20". */
export function fmtMeanStd(m: number, s: number): string {
  return Number.isFinite(s) ? `${f2(m)} ± ${f2(s)}` : f2(m);
}

/** The baseline cell of a metric. */
export function fmtBase(d: ArmDiff): string {
  return fmtMeanStd(d.base.mean, d.base.std);
}

/** The LJ cell: value with the difference in parentheses, as in the paper: "85.52 (+0.42)". */
export function fmtLj(d: ArmDiff): string {
  return `${fmtMeanStd(d.lj.mean, d.lj.std)} (${signed(d.diff)})`;
}

/** Δt cell: "7.31%" or "7.31% ± 1.20". */
export function fmtDt(dt: PairSummary['dt']): string {
  return Number.isFinite(dt.std) ? `${f2(dt.mean)}% ± ${f2(dt.std)}` : `${f2(dt.mean)}%`;
}

/** Whether the difference exceeds the seed spread, with the numbers: "yes (0.42 > 0.37; t = 3.10)" (|diff| > spread). */
export function fmtVerdict(d: ArmDiff): string {
  if (d.exceedsSpread === null) return 'n/a (one seed)';
  const t = Number.isFinite(d.t) ? d.t.toFixed(2) : d.t > 0 ? '+inf' : '-inf';
  return `${d.exceedsSpread ? 'yes' : 'no'} (${f2(Math.abs(d.diff))} ${d.exceedsSpread ? '>' : '≤'} ${f2(d.spread)}; t = ${t})`;
}

/** The sentence that says how the verdict is decided, for k seeds. */
export function verdictRule(seeds: number): string {
  if (seeds < 2) return 'With one seed there is no spread across seeds: run with --seeds 1,2,3 to judge the differences.';
  return (
    `"Exceeds spread": |mean_LJ − mean_base| > sqrt(std_base² + std_LJ²), the sample standard deviations across the ${seeds} seeds. ` +
    `t: paired t-statistic of LJ − baseline over the seeds (${seeds - 1} degree${seeds === 2 ? '' : 's'} of freedom; |t| > ${tCritical95(seeds - 1).toFixed(3)} is significant at the two-sided 5% level).`
  );
}

/** A Markdown table. */
export function mdTable(headers: string[], rows: string[][]): string {
  const esc = (s: string) => s.replace(/\|/g, '\\|');
  return [
    `| ${headers.map(esc).join(' | ')} |`,
    `|${headers.map(() => '---').join('|')}|`,
    ...rows.map((r) => `| ${r.map(esc).join(' | ')} |`),
  ].join('\n');
}

/** CSV text (RFC 4180 quoting) with a header row. */
export function csvTable(headers: string[], rows: (string | number | boolean | null)[][]): string {
  const cell = (v: string | number | boolean | null) => {
    if (v === null || (typeof v === 'number' && !Number.isFinite(v))) return '';
    const s = typeof v === 'number' ? String(Math.round(v * 1e6) / 1e6) : String(v);
    return /[",\n]/.test(s) ? `"${s.replace(/"/g, '""')}"` : s;
  };
  return [headers, ...rows].map((r) => r.map((c) => cell(c as string | number | boolean | null)).join(',')).join('\n') + '\n';
}
