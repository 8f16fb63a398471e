/**
 * Baseline vs LJ, as in the paper's Tables 1–4: for each seed, two arms that differ only in the LJ
 * loss: same initialisation seed (the builder then gives identical initial parameters, since LJ adds
 * none; checked before training), same data-order/flip seed, same recipe. Writes into OUT:
 *
 *   compare.json   the experiment's key (preset, resolved config, seeds, data folder)
 *   table.md       the paper-style table, per-seed numbers and how to read them (also printed)
 *   table.csv      the summary table as numbers; runs.csv the per-seed, per-arm numbers
 *   curves.svg/png train/test accuracy and loss per epoch of both arms (mean ± std over seeds)
 *   graphs/<arm>/, runs/<arm>/   arms baseline-s<seed> and lj-s<seed>
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Arm, ArmOutcome, ArmRunOptions, assertSameInitialState, claimExperimentDir, ensureGraphs, runArm } from './arms';
import { ExperimentOptions, armConfig, dataSource, describeLj, describeModel, describeTrain, resolveBaseConfig, resolveSeeds } from './common';
import { CurveSeries, curvesSpec, writeChartBoth } from './plot';
import {
  PairSummary, RunNumbers, TABLE_METRICS, csvTable, deltaT, fmtBase, fmtDt, fmtLj, fmtVerdict, mdTable, runNumbers, summarizePair, verdictRule,
} from './summary';
import { writeFileAtomic } from '../util/atomic-write';

export interface CompareOptions extends ExperimentOptions, Pick<ArmRunOptions, 'log' | 'stopAfterEpochs'> {}

export interface CompareResult {
  out: string;
  /** False when an arm stopped short (only with stopAfterEpochs); nothing is summarised then. */
  complete: boolean;
  outcomes: ArmOutcome[];
  seeds: number[];
  summary?: PairSummary;
  markdown?: string;
  files?: string[];
}

const pct = (x: number) => x.toFixed(2);
const secs = (x: number) => (x < 10 ? x.toFixed(2) : x.toFixed(1));


export async function runCompare(o: CompareOptions): Promise<CompareResult> {
  const base = resolveBaseConfig(o);
  const seeds = resolveSeeds(o, base);
  const out = o.out ?? path.join('runs', `compare-${base.preset}`);
  const data = dataSource(base, o.data);
  const log = o.log ?? (o.quiet ? () => {} : (l: string) => console.log(l));
  const keyCfg = JSON.parse(JSON.stringify(base));
  delete keyCfg.initSeed; // set per seed
  delete keyCfg.train.seed;
  claimExperimentDir(out, 'compare', { kind: 'compare', preset: base.preset, seeds, data, config: keyCfg }, !!o.force, ['seeds']);
  const run: ArmRunOptions = { data: o.data, threads: o.threads, ep: o.ep, progress: o.progress, quiet: o.quiet, log, stopAfterEpochs: o.stopAfterEpochs };

  const outcomes: ArmOutcome[] = [];
  for (const seed of seeds) {
    const arms: Arm[] = [
      { name: `baseline-s${seed}`, cfg: armConfig(base, seed, false) },
      { name: `lj-s${seed}`, cfg: armConfig(base, seed, {}) },
    ];
    const dirs = arms.map((a) => path.join(out, 'graphs', a.name));
    arms.forEach((a, i) => ensureGraphs(a.cfg, dirs[i]));
    assertSameInitialState(dirs[0], dirs[1]);
    for (const arm of arms) {
      const r = await runArm(out, arm, run);
      outcomes.push(r);
      if (!r.complete) {
        log(`[${arm.name}] stopped at epoch ${r.metrics.length} of ${arm.cfg.train.epochs}; run the same command again to resume`);
        return { out, complete: false, outcomes, seeds };
      }
    }
  }

  const numbers = (prefix: string) => seeds.map((s) => runNumbers(outcomes.find((x) => x.arm.name === `${prefix}-s${s}`)!.metrics));
  const b = numbers('baseline'), l = numbers('lj');
  const summary = summarizePair(b, l);
  const ljLabel = `LJ (${describeLj(base.lj)})`;
  const markdown = compareMarkdown(base.preset, base, seeds, data, summary, b, l, ljLabel);
  writeFileAtomic(path.join(out, 'table.md'), markdown);
  writeFileAtomic(path.join(out, 'table.csv'), compareCsv(summary, seeds, base.train.epochs));
  writeFileAtomic(path.join(out, 'runs.csv'), runsCsv(seeds, b, l));
  const series: CurveSeries[] = outcomes.map((x) => ({ series: x.arm.name.startsWith('baseline') ? 'baseline' : ljLabel, seed: x.arm.cfg.train.seed, metrics: x.metrics }));
  const spec = curvesSpec(series, { title: `${base.preset}: baseline vs LJ`, legend: 'arm' });
  const charts = await writeChartBoth(spec, path.join(out, 'curves'));
  return { out, complete: true, outcomes, seeds, summary, markdown, files: ['table.md', 'table.csv', 'runs.csv'].map((f) => path.join(out, f)).concat(charts) };
}

export function compareMarkdown(preset: string, cfg: Parameters<typeof describeTrain>[0], seeds: number[], data: string | null, s: PairSummary, b: RunNumbers[], l: RunNumbers[], ljLabel: string): string {
  const k = seeds.length;
  const head = ['Arm', ...TABLE_METRICS.map((m) => m.label), 'Δt'];
  const rows = [
    ['baseline', ...TABLE_METRICS.map((m) => fmtBase(s.metrics[m.key])), '—'],
    [ljLabel, ...TABLE_METRICS.map((m) => fmtLj(s.metrics[m.key])), fmtDt(s.dt)],
  ];
  if (k > 1) rows.push(['difference exceeds seed spread?', ...TABLE_METRICS.map((m) => fmtVerdict(s.metrics[m.key])), '']);
  const perSeed = seeds.flatMap((seed, i) => [
    [String(seed), 'baseline', pct(b[i].train_acc), pct(b[i].test_acc), pct(b[i].max_test_acc), secs(b[i].epochSeconds), b[i].samplesPerS.toFixed(0), ''],
    [String(seed), 'LJ', pct(l[i].train_acc), pct(l[i].test_acc), pct(l[i].max_test_acc), secs(l[i].epochSeconds), l[i].samplesPerS.toFixed(0), `${deltaT(b[i], l[i]).toFixed(2)}%`],
  ]);
  return [
    `## compare: ${preset}`,
    '',
    `- model: ${describeModel(cfg)}; LJ arm: ${describeLj(cfg.lj)}`,
    `- training: ${describeTrain(cfg)}`,
    `- seeds: ${seeds.join(', ')} (seed s sets both the data-order/flip seed and the initialisation seed; both arms of a seed start from identical weights and see the same batches)`,
    `- data: ${data ?? 'default'}`,
    '',
    mdTable(head, rows),
    '',
    `Accuracies in percent${k > 1 ? `, mean ± sample standard deviation over ${k} seeds` : ''}; in parentheses: LJ − baseline. ` +
      'Train Acc: on the augmented training batches of the last epoch; Test Acc: after the last epoch; Max Test Acc: best epoch. ' +
      'Δt: extra training time of the LJ arm, 100·(t_LJ/t_base − 1) with t = training seconds per sample in the run\'s fastest epoch (evaluation excluded; the fastest epoch is the one least slowed by other load), per seed, then mean ± std over seeds.',
    '',
    verdictRule(k),
    '',
    '### Per seed',
    '',
    mdTable(['Seed', 'Arm', 'Train Acc', 'Test Acc', 'Max Test Acc', 's/epoch (mean)', 'train samples/s (best epoch)', 'Δt'], perSeed),
    '',
  ].join('\n');
}

function compareCsv(s: PairSummary, seeds: number[], epochs: number): string {
  const head = ['arm', 'seeds', 'epochs'];
  for (const { key } of TABLE_METRICS) head.push(key, `${key}_std`, `${key}_diff`, `${key}_spread`, `${key}_exceeds_spread`, `${key}_paired_t`);
  head.push('dt_pct', 'dt_pct_std');
  const row = (arm: 'baseline' | 'lj') => {
    const r: (string | number | boolean | null)[] = [arm, seeds.join(' '), epochs];
    for (const { key } of TABLE_METRICS) {
      const d = s.metrics[key];
      const a = arm === 'baseline' ? d.base : d.lj;
      r.push(a.mean, a.std, ...(arm === 'lj' ? [d.diff, d.spread, d.exceedsSpread, d.t] : [null, null, null, null]));
    }
    r.push(...(arm === 'lj' ? [s.dt.mean, s.dt.std] : [null, null]));
    return r;
  };
  return csvTable(head, [row('baseline'), row('lj')]);
}

function runsCsv(seeds: number[], b: RunNumbers[], l: RunNumbers[]): string {
  const head = ['seed', 'arm', 'epochs', 'train_acc', 'test_acc', 'max_test_acc', 'epoch_seconds', 'train_samples_per_s', 'dt_pct'];
  const rows = seeds.flatMap((seed, i) => [
    [seed, 'baseline', b[i].epochs, b[i].train_acc, b[i].test_acc, b[i].max_test_acc, b[i].epochSeconds, b[i].samplesPerS, null],
    [seed, 'lj', l[i].epochs, l[i].train_acc, l[i].test_acc, l[i].max_test_acc, l[i].epochSeconds, l[i].samplesPerS, deltaT(b[i], l[i])],
  ]);
  return csvTable(head, rows);
}
