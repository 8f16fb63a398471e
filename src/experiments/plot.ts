/**
 * Charts of runs, drawn with Vega-Lite (spec → Vega → SVG, pure JS) and rasterised to PNG with resvg
 * (@resvg/resvg-js, a prebuilt binary inside its npm package). Vega and Vega-Lite 6 are ES modules,
 * loaded with a real dynamic import() from this CommonJS build.
 *
 *   curves: train/test accuracy and loss per epoch, one colour per series (an arm or a run); with
 *           several seeds per series the line is the mean and the band ± one standard deviation
 *   sweep:  test accuracy against σ, one line per n (dashes per ε), the baseline as a grey rule
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { UserError } from '../runtime/session';
import { EpochMetrics, METRIC_COLUMNS } from '../train/metrics';
import { writeFileAtomic } from '../util/atomic-write';

/** A Vega-Lite spec (kept loose: vega-lite's types are ESM-only). */
export type VlSpec = Record<string, unknown>;

// `import()` written so that TypeScript's CommonJS output keeps it an import (not a require).
const importEsm = new Function('specifier', 'return import(specifier)') as (s: string) => Promise<any>; // eslint-disable-line @typescript-eslint/no-explicit-any

const SCHEMA = 'https://vega.github.io/schema/vega-lite/v6.json';
const PANEL = { width: 340, height: 210 };
const CONFIG = { background: 'white', font: 'DejaVu Sans, Arial, sans-serif', title: { fontSize: 15 }, axis: { labelFontSize: 11, titleFontSize: 12 }, legend: { labelFontSize: 12, titleFontSize: 12, labelLimit: 400 } };

/** Reads a run folder's metrics.csv (the columns of METRIC_COLUMNS, by header name). */
export function readMetricsCsv(runDir: string): EpochMetrics[] {
  const file = path.join(runDir, 'metrics.csv');
  if (!fs.existsSync(runDir)) throw new UserError(`run folder ${runDir} does not exist`);
  if (!fs.existsSync(file)) throw new UserError(`${runDir} has no metrics.csv (not a run folder, or no epoch finished yet)`);
  const lines = fs.readFileSync(file, 'utf8').split('\n').filter((l) => l.trim());
  if (!lines.length) throw new UserError(`${file} is empty`);
  const header = lines[0].split(',').map((s) => s.trim());
  const missing = METRIC_COLUMNS.filter((c) => !header.includes(c));
  if (missing.length) throw new UserError(`${file} lacks the column${missing.length > 1 ? 's' : ''} ${missing.join(', ')}`);
  return lines.slice(1).map((l, i) => {
    const cells = l.split(',');
    const row = {} as Record<string, number>;
    header.forEach((h, k) => (row[h] = Number(cells[k])));
    for (const c of METRIC_COLUMNS) if (!Number.isFinite(row[c])) throw new UserError(`${file} line ${i + 2}: ${c} is not a number ('${cells[header.indexOf(c)]}')`);
    return row as unknown as EpochMetrics;
  });
}

/** One line of a curves chart: a named series (arm or run), optionally one of several seeds. */
export interface CurveSeries {
  series: string;
  seed?: number;
  metrics: EpochMetrics[];
}

/** The four panels, as in the paper's Figures 2 and 3. */
const CURVE_PANELS: { field: string; title: string }[] = [
  { field: 'train_acc', title: 'train accuracy (%)' },
  { field: 'test_acc', title: 'test accuracy (%)' },
  { field: 'train_ce', title: 'train loss (cross-entropy)' },
  { field: 'test_loss', title: 'test loss (cross-entropy)' },
];

/** Vega-Lite spec of accuracy and loss curves per epoch. */
export function curvesSpec(series: CurveSeries[], o: { title: string; legend: string; subtitle?: string }): VlSpec {
  const values = series.flatMap((s) =>
    s.metrics.map((m) => ({
      series: s.series, band: s.series, seed: s.seed ?? 0, epoch: m.epoch,
      train_acc: 100 * m.train_acc, test_acc: 100 * m.test_acc, train_ce: m.train_ce, test_loss: m.test_loss,
    })),
  );
  const names = [...new Set(series.map((s) => s.series))];
  const seedsPer = Math.max(...names.map((n) => series.filter((s) => s.series === n).length));
  const maxEpoch = Math.max(1, ...values.map((v) => v.epoch));
  // the bands use `fill` on a copy of the series field (same domain, same colours) and no legend, so the
  // one legend shows the lines' colours
  const color = { field: 'series', type: 'nominal', title: o.legend, scale: { domain: names }, legend: { orient: 'bottom', direction: 'horizontal', columns: Math.min(names.length, 4) } };
  const x = { field: 'epoch', type: 'quantitative', title: 'epoch', scale: { domain: [1, Math.max(2, maxEpoch)] }, axis: { tickMinStep: 1, format: 'd' } };
  const panel = (field: string, title: string) => ({
    ...PANEL,
    layer: [
      ...(seedsPer > 1 ? [{ mark: { type: 'errorband', extent: 'stdev', opacity: 0.2 }, encoding: { x, y: { field, type: 'quantitative', title }, fill: { ...color, field: 'band', legend: null } } }] : []),
      { mark: { type: 'line', point: maxEpoch <= 30, strokeWidth: 2 }, encoding: { x, y: { aggregate: 'mean', field, type: 'quantitative', title, scale: { zero: false } }, color } },
    ],
  });
  const p = CURVE_PANELS.map((c) => panel(c.field, c.title));
  const subtitle = o.subtitle ?? (seedsPer > 1 ? `mean over ${seedsPer} seeds, band: ± 1 std` : undefined);
  return {
    $schema: SCHEMA,
    title: { text: o.title, ...(subtitle ? { subtitle } : {}) },
    data: { values },
    vconcat: [{ hconcat: [p[0], p[1]] }, { hconcat: [p[2], p[3]] }],
    config: CONFIG,
  };
}

/** One point of a sweep chart: an LJ setting's (or the baseline's) result for one seed, accuracies in percent. */
export interface SweepPoint {
  kind: 'baseline' | 'lj';
  sigma?: number;
  n?: number;
  epsilon?: number;
  seed: number;
  test_acc: number;
  max_test_acc: number;
}

/** Vega-Lite spec of test accuracy against σ: a line per n (dash per ε), the baseline as a grey rule. */
export function sweepSpec(points: SweepPoint[], o: { title: string; subtitle?: string }): VlSpec {
  const lj = points.filter((p) => p.kind === 'lj');
  const epsilons = [...new Set(lj.map((p) => p.epsilon!))].sort((a, b) => a - b);
  const ns = [...new Set(lj.map((p) => p.n!))].sort((a, b) => a - b);
  const sigmas = [...new Set(lj.map((p) => p.sigma!))].sort((a, b) => a - b);
  const seeds = new Set(points.map((p) => p.seed)).size;
  const values = points.map((p) => ({ ...p, series: p.kind === 'baseline' ? 'baseline' : `n=${p.n}`, eps: p.kind === 'baseline' ? '' : `ε=${p.epsilon}` }));
  const domain = ['baseline', ...ns.map((n) => `n=${n}`)];
  const palette = ['#4c78a8', '#f58518', '#54a24b', '#e45756', '#72b7b2', '#b279a2', '#ff9da6', '#9d755d'];
  const color = { field: 'series', type: 'nominal', title: 'setting', scale: { domain, range: ['#888888', ...ns.map((_, i) => palette[i % palette.length])] } };
  const x = { field: 'sigma', type: 'ordinal', title: 'σ (LJ potential well)', sort: sigmas, axis: { labelAngle: 0 } };
  const dash = epsilons.length > 1 ? { strokeDash: { field: 'eps', type: 'nominal', title: 'ε', sort: epsilons.map((e) => `ε=${e}`) } } : {};
  const panel = (field: string, title: string) => ({
    ...PANEL,
    layer: [
      { transform: [{ filter: "datum.kind == 'baseline'" }], mark: { type: 'rule', strokeDash: [6, 4], strokeWidth: 2 }, encoding: { y: { aggregate: 'mean', field, type: 'quantitative', title }, color } },
      ...(seeds > 1 ? [{ transform: [{ filter: "datum.kind == 'lj'" }], mark: { type: 'errorbar', extent: 'stdev', ticks: { size: 10 }, opacity: 0.8 }, encoding: { x, y: { field, type: 'quantitative', title }, color, ...(epsilons.length > 1 ? { xOffset: { field: 'eps', type: 'nominal' } } : {}) } }] : []),
      { transform: [{ filter: "datum.kind == 'lj'" }], mark: { type: 'line', point: { size: 60, filled: true }, strokeWidth: 2 }, encoding: { x, y: { aggregate: 'mean', field, type: 'quantitative', title, scale: { zero: false } }, color, ...dash } },
    ],
    resolve: { scale: { y: 'shared' } },
  });
  const subtitle = o.subtitle ?? `${seeds > 1 ? `mean over ${seeds} seeds, bars: ± 1 std; ` : ''}dashed grey rule: baseline without LJ`;
  return {
    $schema: SCHEMA,
    title: { text: o.title, subtitle },
    data: { values },
    hconcat: [panel('test_acc', 'final test accuracy (%)'), panel('max_test_acc', 'max test accuracy (%)')],
    config: CONFIG,
  };
}

/** Renders a Vega-Lite spec to SVG text. */
export async function renderSvg(spec: VlSpec): Promise<string> {
  const [vega, vl] = await Promise.all([importEsm('vega'), importEsm('vega-lite')]);
  const compiled = vl.compile(spec).spec;
  const view = new vega.View(vega.parse(compiled), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Rasterises SVG text to PNG bytes at `scale` (2: crisp on high-density screens). */
export function svgToPng(svg: string, scale = 2): Buffer {
  // Loaded lazily: the native binding is only needed for PNG output.
  const { Resvg } = require('@resvg/resvg-js') as typeof import('@resvg/resvg-js');
  const r = new Resvg(svg, {
    fitTo: { mode: 'zoom', value: scale },
    background: 'white',
    font: { loadSystemFonts: true, defaultFontFamily: 'DejaVu Sans', sansSerifFamily: 'DejaVu Sans' },
  });
  return r.render().asPng();
}

function writeAtomic(file: string, data: string | Uint8Array): void {
  fs.mkdirSync(path.dirname(path.resolve(file)), { recursive: true });
  writeFileAtomic(file, data, 'plot');
}

/** Writes a chart to `file`, SVG or PNG by its extension. */
export async function writeChart(spec: VlSpec, file: string): Promise<void> {
  const ext = path.extname(file).toLowerCase();
  if (ext !== '.svg' && ext !== '.png') throw new UserError(`--out ${file}: the file must end in .svg or .png`);
  const svg = await renderSvg(spec);
  writeAtomic(file, ext === '.svg' ? svg : svgToPng(svg));
}

/** Writes `<base>.svg` and `<base>.png`. */
export async function writeChartBoth(spec: VlSpec, base: string): Promise<string[]> {
  const svg = await renderSvg(spec);
  writeAtomic(`${base}.svg`, svg);
  writeAtomic(`${base}.png`, svgToPng(svg));
  return [`${base}.svg`, `${base}.png`];
}
