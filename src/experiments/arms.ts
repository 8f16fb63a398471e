/**
 * Runs the arms of an experiment (compare, sweep) inside one output folder, resumably.
 *
 *   OUT/<kind>.json        the experiment's key config; a different experiment is refused unless --force
 *   OUT/graphs/<arm>/      build-graph output of the arm (rebuilt only when missing, broken or of another config)
 *   OUT/runs/<arm>/        the arm's run folder (metrics.csv, last.ckpt, ...)
 *
 * An arm whose last.ckpt holds every epoch and whose metrics have every row is done and not rerun; an
 * arm with a last.ckpt short of that resumes from it; any other arm trains from its initial checkpoint.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config';
import { readCheckpoint } from '../artifacts/checkpoint';
import { readManifest } from '../artifacts/manifest';
import { writeNativeArtifacts } from '../cli/build-graph';
import { TrainCliOptions, trainRun } from '../cli/train';
import { UserError } from '../runtime/session';
import { EpochMetrics, readMetrics } from '../train/metrics';
import { loadTrainState } from '../train/state';
import { writeFileAtomic } from '../util/atomic-write';

/** One training run of an experiment: its folder name and fully resolved config. */
export interface Arm {
  name: string;
  cfg: RunConfig;
}

export interface ArmOutcome {
  arm: Arm;
  runDir: string;
  graphsDir: string;
  metrics: EpochMetrics[];
  /** What this call did: skipped (already done), resumed, trained (from scratch). */
  action: 'skipped' | 'resumed' | 'trained';
  complete: boolean;
}

/** Run-time options handed to every arm (they do not change results). */
export interface ArmRunOptions {
  data?: string;
  threads?: number;
  ep?: TrainCliOptions['ep'];
  progress?: boolean;
  quiet?: boolean;
  log?: (line: string) => void;
  /** Tests: each arm stops after this many epochs of this call, as if killed. */
  stopAfterEpochs?: number;
}

/** JSON with object keys sorted, so equal configs give equal strings. */
export function canonicalJson(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonicalJson).join(',')}]`;
  if (v && typeof v === 'object') {
    return `{${Object.keys(v as object)
      .filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .sort()
      .map((k) => `${JSON.stringify(k)}:${canonicalJson((v as Record<string, unknown>)[k])}`)
      .join(',')}}`;
  }
  return JSON.stringify(v);
}

/** Leaf paths where two JSON values differ, e.g. `train.epochs: 2 -> 3`. */
export function jsonDiff(a: unknown, b: unknown, at = ''): string[] {
  const isObj = (x: unknown) => x !== null && typeof x === 'object' && !Array.isArray(x);
  if (isObj(a) && isObj(b)) {
    const keys = [...new Set([...Object.keys(a as object), ...Object.keys(b as object)])].sort();
    return keys.flatMap((k) => jsonDiff((a as Record<string, unknown>)[k], (b as Record<string, unknown>)[k], at ? `${at}.${k}` : k));
  }
  if (canonicalJson(a) === canonicalJson(b)) return [];
  const show = (x: unknown) => (x === undefined ? '(none)' : JSON.stringify(x));
  return [`${at || '(root)'}: ${show(a)} -> ${show(b)}`];
}

/** The entries an experiment writes into its folder (the only ones --force removes). */
const OWNED = ['graphs', 'runs', 'table.md', 'table.csv', 'runs.csv', 'curves.svg', 'curves.png', 'sweep.svg', 'sweep.png'];
const KINDS = ['compare', 'sweep'];

/**
 * Claims `out` for an experiment of `kind` with `key`: writes OUT/<kind>.json, or checks that the one
 * there is the same experiment. Keys listed in `free` (the seeds) may change between calls: each seed's
 * arms are independent runs, so adding a seed reuses the finished ones. With `force`, a different (or
 * the same) experiment's outputs are removed first and it starts over. Returns true when the folder
 * already held this experiment.
 */
export function claimExperimentDir(out: string, kind: 'compare' | 'sweep', key: Record<string, unknown>, force: boolean, free: string[] = [], flag = '--out'): boolean {
  const keyFile = path.join(out, `${kind}.json`);
  if (fs.existsSync(out) && !fs.statSync(out).isDirectory()) throw new UserError(`${flag} ${out} is a file, not a folder`);
  const entries = fs.existsSync(out) ? fs.readdirSync(out) : [];
  const other = KINDS.filter((k) => k !== kind && entries.includes(`${k}.json`));
  let same = false;
  if (!force) {
    if (other.length) throw new UserError(`${flag} ${out} holds a ${other[0]} experiment (${other[0]}.json), not a ${kind}; choose another ${flag} or pass --force to replace it`);
    if (fs.existsSync(keyFile)) {
      let old: unknown;
      try {
        old = JSON.parse(fs.readFileSync(keyFile, 'utf8'));
      } catch (e) {
        throw new UserError(`${keyFile} is not valid JSON (${(e as Error).message}); pass --force to start over`);
      }
      const strip = (k: unknown) => Object.fromEntries(Object.entries((k ?? {}) as Record<string, unknown>).filter(([name]) => !free.includes(name)));
      const diff = jsonDiff(strip(old), strip(JSON.parse(JSON.stringify(key))));
      if (diff.length) {
        const shown = diff.slice(0, 4).join('; ') + (diff.length > 4 ? `; and ${diff.length - 4} more` : '');
        throw new UserError(`${flag} ${out} already holds a different ${kind} experiment (${shown}); choose another ${flag} or pass --force to discard it`);
      }
      same = true;
    } else if (entries.length) {
      throw new UserError(`${flag} ${out} is not empty and holds no ${kind}.json (not a ${kind} folder); choose another ${flag} or pass --force to use it anyway`);
    }
  } else {
    for (const e of [...OWNED, ...KINDS.map((k) => `${k}.json`)]) fs.rmSync(path.join(out, e), { recursive: true, force: true });
  }
  fs.mkdirSync(out, { recursive: true });
  writeFileAtomic(keyFile, JSON.stringify(key, null, 2) + '\n');
  return same;
}

/** Epochs held by a run folder's last.ckpt (0 when there is none). */
function checkpointEpoch(runDir: string): number {
  const f = path.join(runDir, 'last.ckpt');
  if (!fs.existsSync(f)) return 0;
  return Number(readCheckpoint(f).properties.ints['ljtrain.epoch'] ?? 0);
}

/** Builds the arm's graphs unless a valid graphs folder of the same config is there. */
export function ensureGraphs(cfg: RunConfig, dir: string): 'built' | 'reused' {
  if (fs.existsSync(path.join(dir, 'manifest.json'))) {
    try {
      const m = readManifest(dir);
      if (canonicalJson(m.config) === canonicalJson(cfg)) return 'reused';
    } catch {
      // broken or stale: rebuild below
    }
  }
  writeNativeArtifacts(cfg, dir);
  return 'built';
}

/**
 * Checks that two graphs folders start from identical parameters and the same data-order RNG; the
 * baseline and the LJ arm of one seed must (LJ adds no parameters). Throws naming the first difference.
 */
export function assertSameInitialState(dirA: string, dirB: string): void {
  const ma = readManifest(dirA), mb = readManifest(dirB);
  const names = (m: typeof ma) => m.params.map((p) => `${p.name}[${p.shape.join(',')}]`).join(' ');
  if (names(ma) !== names(mb)) throw new Error(`${dirA} and ${dirB} have different parameters; the arms cannot be compared`);
  const a = loadTrainState(path.join(dirA, 'initial.ckpt'), ma.params, new Map()).state;
  const b = loadTrainState(path.join(dirB, 'initial.ckpt'), mb.params, new Map()).state;
  for (const [name, p] of a.params) {
    const q = b.params.get(name)!.data;
    for (let i = 0; i < p.data.length; i++) {
      if (!Object.is(p.data[i], q[i])) throw new Error(`initial ${name}[${i}] differs between ${dirA} (${p.data[i]}) and ${dirB} (${q[i]}); the arms would not start from the same weights`);
    }
  }
  if (canonicalJson(a.rng) !== canonicalJson(b.rng)) throw new Error(`${dirA} and ${dirB} start with different data-order RNG states`);
}

export const graphsDirOf = (out: string, name: string) => path.join(out, 'graphs', name);
export const runDirOf = (out: string, name: string) => path.join(out, 'runs', name);

/** Trains (or resumes, or skips) one arm. */
export async function runArm(out: string, arm: Arm, o: ArmRunOptions): Promise<ArmOutcome> {
  const log = o.log ?? (o.quiet ? () => {} : (l: string) => console.log(l));
  const graphsDir = graphsDirOf(out, arm.name), runDir = runDirOf(out, arm.name);
  const epochs = arm.cfg.train.epochs;
  const base = { data: o.data, threads: o.threads, ep: o.ep, progress: o.progress, quiet: o.quiet, run: runDir, stopAfterEpochs: o.stopAfterEpochs };
  const done = checkpointEpoch(runDir);
  let action: ArmOutcome['action'];
  if (done >= epochs && readMetrics(runDir).length >= epochs) {
    action = 'skipped';
    log(`[${arm.name}] done (${done} epochs), not rerun`);
  } else if (done > 0) {
    action = 'resumed';
    log(`[${arm.name}] resuming from epoch ${done + 1} of ${epochs}`);
    ensureGraphs(arm.cfg, graphsDir);
    await trainRun(graphsDir, { ...base, resume: true, epochs });
  } else {
    action = 'trained';
    ensureGraphs(arm.cfg, graphsDir);
    log(`[${arm.name}] training ${epochs} epoch${epochs === 1 ? '' : 's'}`);
    await trainRun(graphsDir, { ...base, force: true });
  }
  const metrics = readMetrics(runDir).filter((m) => m.epoch <= epochs);
  return { arm, runDir, graphsDir, metrics, action, complete: metrics.length >= epochs && checkpointEpoch(runDir) >= epochs };
}

/** Parses a comma-separated list of numbers for `flag` (positive integers when `int`). */
export function parseList(flag: string, v: string, int = false): number[] {
  const parts = v.split(',').map((s) => s.trim());
  const bad = parts.find((p) => p === '' || !Number.isFinite(Number(p)) || (int ? !/^\d+$/.test(p) || Number(p) <= 0 : false));
  if (bad !== undefined) {
    throw new UserError(`${flag} must be a comma-separated list of ${int ? 'positive integers' : 'numbers'}, e.g. ${int ? '1,2,3' : '0.5,1.0'}; got '${v}'`);
  }
  const xs = parts.map(Number);
  const dup = xs.find((x, i) => xs.indexOf(x) !== i);
  if (dup !== undefined) throw new UserError(`${flag} lists ${dup} twice ('${v}')`);
  return xs;
}
