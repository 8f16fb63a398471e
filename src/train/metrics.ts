/** Per-epoch metrics: printed, and appended to metrics.csv and metrics.jsonl in the run folder. */
import * as fs from 'node:fs';
import * as path from 'node:path';

export interface EpochMetrics {
  epoch: number;
  lr: number;
  train_ce: number;
  train_lj: number;
  train_acc: number;
  test_loss: number;
  test_acc: number;
  max_test_acc: number;
  epoch_seconds: number;
  samples_per_s: number;
}

export const METRIC_COLUMNS: (keyof EpochMetrics)[] = [
  'epoch', 'lr', 'train_ce', 'train_lj', 'train_acc', 'test_loss', 'test_acc', 'max_test_acc', 'epoch_seconds', 'samples_per_s',
];

export function appendMetrics(runDir: string, m: EpochMetrics): void {
  const csv = path.join(runDir, 'metrics.csv');
  if (!fs.existsSync(csv)) fs.writeFileSync(csv, METRIC_COLUMNS.join(',') + '\n');
  fs.appendFileSync(csv, METRIC_COLUMNS.map((k) => String(m[k])).join(',') + '\n');
  fs.appendFileSync(path.join(runDir, 'metrics.jsonl'), JSON.stringify(m) + '\n');
}

export function readMetrics(runDir: string): EpochMetrics[] {
  const f = path.join(runDir, 'metrics.jsonl');
  if (!fs.existsSync(f)) return [];
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => JSON.parse(l) as EpochMetrics);
}

/** Drops rows after `epoch` (a run killed between its metrics and its checkpoint resumes cleanly). */
export function truncateMetrics(runDir: string, epoch: number): void {
  const rows = readMetrics(runDir).filter((m) => m.epoch <= epoch);
  const csv = path.join(runDir, 'metrics.csv');
  const jsonl = path.join(runDir, 'metrics.jsonl');
  if (fs.existsSync(csv)) fs.unlinkSync(csv);
  if (fs.existsSync(jsonl)) fs.unlinkSync(jsonl);
  for (const r of rows) appendMetrics(runDir, r);
}

export function formatMetrics(m: EpochMetrics): string {
  const pct = (x: number) => (100 * x).toFixed(2) + '%';
  return (
    `epoch ${m.epoch}  lr ${m.lr.toExponential(2)}  train ce ${m.train_ce.toFixed(4)} lj ${m.train_lj.toFixed(4)} acc ${pct(m.train_acc)}  ` +
    `test loss ${m.test_loss.toFixed(4)} acc ${pct(m.test_acc)} (max ${pct(m.max_test_acc)})  ${m.epoch_seconds.toFixed(1)}s ${m.samples_per_s.toFixed(0)} samples/s`
  );
}
