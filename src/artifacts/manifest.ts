/** manifest.json of a graphs folder: config, parameters, I/O names, versions, sha256 of every file. */
import * as crypto from 'node:crypto';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config';
import { UserError } from '../runtime/session';
import type { NativeTrainStep } from './graphs';
import { writeFileAtomic } from '../util/atomic-write';

export const TOOL_VERSION: string = require('../../../package.json').version;

export interface Manifest {
  tool: string;
  toolVersion: string;
  onnxruntimeNode: string;
  preset: string;
  config: RunConfig;
  optimizer: string;
  params: { name: string; shape: number[] }[];
  trainStep: { inputs: string[]; outputs: string[] };
  files: Record<string, string>;
}

export function sha256(file: string): string {
  return crypto.createHash('sha256').update(fs.readFileSync(file)).digest('hex');
}

function ortVersion(): string {
  try {
    return require('onnxruntime-node/package.json').version;
  } catch {
    return 'unknown';
  }
}

export function writeManifest(dir: string, cfg: RunConfig, ts: NativeTrainStep, files: string[]): Manifest {
  const g = ts.model.graph!;
  const m: Manifest = {
    tool: 'ljtrain',
    toolVersion: TOOL_VERSION,
    onnxruntimeNode: ortVersion(),
    preset: cfg.preset,
    config: cfg,
    optimizer: cfg.train.optimizer,
    params: ts.params.map((p) => ({ name: p.value.name, shape: p.value.shape as number[] })),
    trainStep: { inputs: (g.input ?? []).map((v) => v.name!), outputs: (g.output ?? []).map((v) => v.name!) },
    files: Object.fromEntries(files.map((f) => [f, sha256(path.join(dir, f))])),
  };
  writeFileAtomic(path.join(dir, 'manifest.json'), JSON.stringify(m, null, 2) + '\n', 'manifest');
  return m;
}

/** Reads a graphs folder's manifest and checks every file against its recorded sha256. */
export function readManifest(dir: string): Manifest {
  const f = path.join(dir, 'manifest.json');
  if (!fs.existsSync(f)) throw new UserError(`${dir} is not a graphs folder (no manifest.json): run ljtrain build-graph --preset NAME --out ${dir}`);
  let m: Manifest;
  try {
    m = JSON.parse(fs.readFileSync(f, 'utf8'));
  } catch (e) {
    throw new UserError(`${f} is not valid JSON (${(e as Error).message}); rebuild with ljtrain build-graph`);
  }
  for (const [name, hash] of Object.entries(m.files ?? {})) {
    const p = path.join(dir, name);
    if (!fs.existsSync(p)) throw new UserError(`${p} is missing (listed in ${f}); rebuild with ljtrain build-graph`);
    if (sha256(p) !== hash) throw new UserError(`${p} does not match the sha256 in ${f}; it changed after build-graph — rebuild`);
  }
  return m;
}
