/**
 * A grid of LJ settings (σ × n × ε) against one baseline, per seed, as in the paper's appendix E.4
 * (Figure 6). Every arm of a seed starts from the same weights and sees the same batches. Writes into OUT:
 *
 *   sweep.json       the experiment's key (preset, resolved config, grid, seeds, data folder)
 *   table.md/.csv    one row per setting: LJ values with the difference to the baseline, Δt
 *   runs.csv         per-seed, per-arm numbers
 *   sweep.svg/png    final and max test accuracy against σ, a line per n (dashes per ε), baseline rule
 *   graphs/<arm>/, runs/<arm>/   baseline-s<seed> and lj-sigma<σ>-n<n>-eps<ε>-s<seed>
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { validateConfig } from '../config';
import { Arm, ArmOutcome, ArmRunOptions, assertSameInitialState, claimExperimentDir, ensureGraphs, runArm } from './arms';
import { ExperimentOptions, armConfig, dataSource, describeLj, describeModel, describeTrain, resolveBaseConfig, resolveSeeds } from './common';
import { SweepPoint, sweepSpec, writeChartBoth } from './plot';
import { PairSummary, RunNumbers, TABLE_METRICS, csvTable, deltaT, fmtBase, fmtDt, fmtLj, fmtMeanStd, fmtVerdict, mdTable, runNumbers, summarizePair, verdictRule } from './summary';
import { mean, std } from './stats';
import { writeFileAtomic } from '../util/atomic-write';

export interface SweepOptions extends Omit<ExperimentOptions, 'sigma' | 'n' | 'epsilon'>, Pick<ArmRunOptions, 'log' | 'stopAfterEpochs'> {
  sigmas?: number[];
  ns?: number[];
  epsilons?: number[];
}

export interface SweepSetting {
  sigma: number;
  n: number;
  epsilon: number;
}

export interface SweepResult {
  out: string;
  complete: boolean;
  outcomes: ArmOutcome[];
  seeds: number[];
  settings: SweepSetting[];
  summaries?: PairSummary[];
  markdown?: string;
  files?: string[];
}

export const settingName = (s: SweepSetting) => `lj-sigma${s.sigma}-n${s.n}-eps${s.epsilon}`;


export async function runSweep(o: SweepOptions): Promise<SweepResult> {
  const base = resolveBaseConfig(o);
  const seeds = resolveSeeds(o, base);
  const sigmas = o.sigmas ?? [base.lj.sigma], ns = o.ns ?? [base.lj.n], epsilons = o.epsilons ?? [base.lj.epsilon];
  const settings: SweepSetting[] = [];
  for (const epsilon of epsilons) for (const n of ns) for (const sigma of sigmas) settings.push({ sigma, n, epsilon });
  for (const s of settings) validateConfig(armConfig(base, seeds[0], s)); // a bad value fails now, naming it
  const out = o.out ?? path.join('runs', `sweep-${base.preset}`);
  const data = dataSource(base, o.data);
  const log = o.log ?? (o.quiet ? () => {} : (l: string) => console.log(l));
  const keyCfg = JSON.parse(JSON.stringify(base));
  delete keyCfg.initSeed;
  delete keyCfg.train.seed;
  for (const k of ['sigma', 'n', 'epsilon'] as const) delete keyCfg.lj[k]; // the grid says them
  claimExperimentDir(out, 'sweep', { kind: 'sweep', preset: base.preset, grid: { sigma: sigmas, n: ns, epsilon: epsilons }, seeds, data, config: keyCfg }, !!o.force, ['seeds']);
  const run: ArmRunOptions = { data: o.data, threads: o.threads, ep: o.ep, progress: o.progress, quiet: o.quiet, log, stopAfterEpochs: o.stopAfterEpochs };

  const outcomes: ArmOutcome[] = [];
  for (const seed of seeds) {
    const arms: Arm[] = [{ name: `baseline-s${seed}`, cfg: armConfig(base, seed, false) }, ...settings.map((s) => ({ name: `${settingName(s)}-s${seed}`, cfg: armConfig(base, seed, s) }))];
    const dirs = arms.map((a) => path.join(out, 'graphs', a.name));
    arms.forEach((a, i) => ensureGraphs(a.cfg, dirs[i]));
    for (const d of dirs.slice(1)) assertSameInitialState(dirs[0], d);
    for (const arm of arms) {
      const r = await runArm(out, arm, run);
      outcomes.push(r);
      if (!r.complete) {
        log(`[${arm.name}] stopped at epoch ${r.metrics.length} of ${arm.cfg.train.epochs}; run the same command again to resume`);
        return { out, complete: false, outcomes, seeds, settings };
      }
    }
  }

  const numbers = (prefix: string) => seeds.map((s) => runNumbers(outcomes.find((x) => x.arm.name === `${prefix}-s${s}`)!.metrics));
  const b = numbers('baseline');
  const perSetting = settings.map((s) => numbers(settingName(s)));
  const summaries = perSetting.map((l) => summarizePair(b, l));
  const markdown = sweepMarkdown(base, seeds, data, settings, summaries, b, perSetting);
  writeFileAtomic(path.join(out, 'table.md'), markdown);
  writeFileAtomic(path.join(out, 'table.csv'), sweepCsv(settings, summaries, seeds, base.train.epochs));
  writeFileAtomic(path.join(out, 'runs.csv'), sweepRunsCsv(seeds, settings, b, perSetting));
  const points: SweepPoint[] = [
    ...b.map((r, i) => ({ kind: 'baseline' as const, seed: seeds[i], test_acc: r.test_acc, max_test_acc: r.max_test_acc })),
    ...settings.flatMap((s, k) => perSetting[k].map((r, i) => ({ kind: 'lj' as const, ...s, seed: seeds[i], test_acc: r.test_acc, max_test_acc: r.max_test_acc }))),
  ];
  const charts = await writeChartBoth(sweepSpec(points, { title: `${base.preset}: LJ sweep, test accuracy against σ` }), path.join(out, 'sweep'));
  return { out, complete: true, outcomes, seeds, settings, summaries, markdown, files: ['table.md', 'table.csv', 'runs.csv'].map((f) => path.join(out, f)).concat(charts) };
}

function sweepMarkdown(cfg: ReturnType<typeof resolveBaseConfig>, seeds: number[], data: string | null, settings: SweepSetting[], sums: PairSummary[], b: RunNumbers[], per: RunNumbers[][]): string {
  const k = seeds.length;
  const head = ['Arm', 'σ', 'n', 'ε', ...TABLE_METRICS.map((m) => m.label), 'Δt', ...(k > 1 ? ['Test Acc difference exceeds seed spread?'] : [])];
  const any = sums[0];
  const rows = [
    ['baseline', '', '', '', ...TABLE_METRICS.map((m) => fmtBase(any.metrics[m.key])), '—', ...(k > 1 ? [''] : [])],
    ...settings.map((s, i) => [
      'LJ', String(s.sigma), String(s.n), String(s.epsilon), ...TABLE_METRICS.map((m) => fmtLj(sums[i].metrics[m.key])), fmtDt(sums[i].dt),
      ...(k > 1 ? [fmtVerdict(sums[i].metrics.test_acc)] : []),
    ]),
  ];
  const best = settings.reduce((bi, _, i) => (sums[i].metrics.test_acc.lj.mean > sums[bi].metrics.test_acc.lj.mean ? i : bi), 0);
  const perSeed = seeds.flatMap((seed, i) => [
    [String(seed), 'baseline', b[i].test_acc.toFixed(2), b[i].max_test_acc.toFixed(2), ''],
    ...settings.map((s, j) => [String(seed), `LJ ${describeLj({ ...cfg.lj, ...s })}`, per[j][i].test_acc.toFixed(2), per[j][i].max_test_acc.toFixed(2), `${deltaT(b[i], per[j][i]).toFixed(2)}%`]),
  ]);
  return [
    `## sweep: ${cfg.preset}`,
    '',
    `- model: ${describeModel(cfg)}; LJ clamp ${cfg.lj.clampMax}, variant ${cfg.lj.variant}`,
    `- training: ${describeTrain(cfg)}`,
    `- seeds: ${seeds.join(', ')} (seed s sets both the data-order/flip seed and the initialisation seed; every arm of a seed starts from identical weights and sees the same batches)`,
    `- data: ${data ?? 'default'}`,
    '',
    mdTable(head, rows),
    '',
    `Best test accuracy: σ=${settings[best].sigma}, n=${settings[best].n}, ε=${settings[best].epsilon} with ${fmtMeanStd(sums[best].metrics.test_acc.lj.mean, sums[best].metrics.test_acc.lj.std)}% (baseline ${fmtMeanStd(mean(b.map((r) => r.test_acc)), std(b.map((r) => r.test_acc)))}%).`,
    '',
    `Accuracies in percent${k > 1 ? `, mean ± sample standard deviation over ${k} seeds` : ''}; in parentheses: LJ − baseline. Δt: extra training time per sample of the LJ arm over the baseline, in percent, from each run's fastest epoch (evaluation excluded).`,
    '',
    verdictRule(k),
    '',
    '### Per seed',
    '',
    mdTable(['Seed', 'Arm', 'Test Acc', 'Max Test Acc', 'Δt'], perSeed),
    '',
  ].join('\n');
}

function sweepCsv(settings: SweepSetting[], sums: PairSummary[], seeds: number[], epochs: number): string {
  const head = ['arm', 'sigma', 'n', 'epsilon', 'seeds', 'epochs'];
  for (const { key } of TABLE_METRICS) head.push(key, `${key}_std`, `${key}_diff`, `${key}_exceeds_spread`, `${key}_paired_t`);
  head.push('dt_pct', 'dt_pct_std');
  const baseRow: (string | number | boolean | null)[] = ['baseline', null, null, null, seeds.join(' '), epochs];
  for (const { key } of TABLE_METRICS) baseRow.push(sums[0].metrics[key].base.mean, sums[0].metrics[key].base.std, null, null, null);
  baseRow.push(null, null);
  const rows = settings.map((s, i) => {
    const r: (string | number | boolean | null)[] = ['lj', s.sigma, s.n, s.epsilon, seeds.join(' '), epochs];
    for (const { key } of TABLE_METRICS) {
      const d = sums[i].metrics[key];
      r.push(d.lj.mean, d.lj.std, d.diff, d.exceedsSpread, d.t);
    }
    r.push(sums[i].dt.mean, sums[i].dt.std);
    return r;
  });
  return csvTable(head, [baseRow, ...rows]);
}

function sweepRunsCsv(seeds: number[], settings: SweepSetting[], b: RunNumbers[], per: RunNumbers[][]): string {
  const head = ['seed', 'arm', 'sigma', 'n', 'epsilon', 'epochs', 'train_acc', 'test_acc', 'max_test_acc', 'epoch_seconds', 'train_samples_per_s', 'dt_pct'];
  const rows = seeds.flatMap((seed, i) => [
    [seed, 'baseline', null, null, null, b[i].epochs, b[i].train_acc, b[i].test_acc, b[i].max_test_acc, b[i].epochSeconds, b[i].samplesPerS, null],
    ...settings.map((s, j) => {
      const r = per[j][i];
      return [seed, 'lj', s.sigma, s.n, s.epsilon, r.epochs, r.train_acc, r.test_acc, r.max_test_acc, r.epochSeconds, r.samplesPerS, deltaT(b[i], r)];
    }),
  ]);
  return csvTable(head, rows);
}
