/** `ljtrain plot RUN [RUN...] --out FILE.svg|png`: accuracy and loss curves of any runs, one colour per run. */
import { Command } from 'commander';
import * as path from 'node:path';
import { CurveSeries, curvesSpec, readMetricsCsv, writeChart } from '../experiments/plot';
import { UserError } from '../runtime/session';

/** Legend names for run folders: their base names, or their paths where base names repeat. */
export function runLabels(runs: string[]): string[] {
  const base = runs.map((r) => path.basename(path.resolve(r)));
  return runs.map((r, i) => (base.filter((b) => b === base[i]).length > 1 ? path.relative(process.cwd(), path.resolve(r)) || '.' : base[i]));
}

export async function plotRuns(runs: string[], out: string, title?: string): Promise<void> {
  if (!runs.length) throw new UserError('plot needs at least one run folder');
  const labels = runLabels(runs);
  const series: CurveSeries[] = runs.map((r, i) => ({ series: labels[i], metrics: readMetricsCsv(r) }));
  const empty = series.find((s) => !s.metrics.length);
  if (empty) throw new UserError(`run ${empty.series} has no finished epoch in its metrics.csv`);
  await writeChart(curvesSpec(series, { title: title ?? (runs.length === 1 ? labels[0] : labels.join(' vs ')), legend: 'run' }), out);
}

export function plotCommand(): Command {
  return new Command('plot')
    .description('plot train/test accuracy and loss per epoch of run folders (from their metrics.csv) into an SVG or PNG file')
    .argument('<runs...>', 'run folders (the legend names them)')
    .requiredOption('--out <file>', 'output file, .svg or .png')
    .option('--title <t>', 'chart title (default: the run names)')
    .action(async (runs: string[], o: { out: string; title?: string }) => {
      await plotRuns(runs, o.out, o.title);
      console.log(`wrote ${o.out}`);
    });
}
