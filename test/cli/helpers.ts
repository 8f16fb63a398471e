/** Helpers of the CLI, training and export tests: in-process and spawned CLI runs, ONNX checker, metrics. */
import { spawn, spawnSync } from 'node:child_process';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { main } from '../../src/cli/main';
import { readCheckpoint } from '../../src/artifacts/checkpoint';
import { decodeModel, onnx } from '../../src/onnx/proto';

/** The project root (holds package.json), from dist/test/cli or test/cli. */
export function projectRoot(): string {
  let d = __dirname;
  for (let i = 0; i < 6; i++) {
    if (fs.existsSync(path.join(d, 'package.json')) && fs.existsSync(path.join(d, 'presets'))) return d;
    d = path.dirname(d);
  }
  throw new Error('project root not found');
}

/** The compiled CLI entry. */
export const CLI_JS = path.join(projectRoot(), 'dist', 'src', 'cli', 'main.js');

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `main(argv)` in-process, capturing console.log/error and writes to process.stdout/stderr
 * (commander prints its own errors with process.stderr.write).
 */
export async function runMain(argv: string[]): Promise<CliResult> {
  const out: string[] = [];
  const err: string[] = [];
  const log = console.log, error = console.error, warn = console.warn;
  const ow = process.stdout.write, ew = process.stderr.write;
  const fmt = (a: unknown[]) => a.map((x) => (typeof x === 'string' ? x : String(x))).join(' ') + '\n';
  console.log = (...a: unknown[]) => void out.push(fmt(a));
  console.error = (...a: unknown[]) => void err.push(fmt(a));
  console.warn = (...a: unknown[]) => void err.push(fmt(a));
  process.stdout.write = ((s: string | Uint8Array) => (out.push(String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => (err.push(String(s)), true)) as typeof process.stderr.write;
  let code: number;
  try {
    code = await main(argv);
  } finally {
    console.log = log;
    console.error = error;
    console.warn = warn;
    process.stdout.write = ow;
    process.stderr.write = ew;
  }
  return { code, stdout: out.join(''), stderr: err.join('') };
}

/** Like {@link runMain}, but fails the test (showing the output) unless the exit code is 0. */
export async function runOk(argv: string[]): Promise<CliResult> {
  const r = await runMain(argv);
  if (r.code !== 0) throw new Error(`ljtrain ${argv.join(' ')} exited ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return r;
}

/** Spawns `node dist/src/cli/main.js ...args` (no LJTRAIN_DEBUG), asynchronously. */
export function spawnCli(args: string[], cwd?: string): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const env = { ...process.env };
    delete env.LJTRAIN_DEBUG;
    const p = spawn(process.execPath, [CLI_JS, ...args], { cwd: cwd ?? projectRoot(), env, stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [], err: Buffer[] = [];
    p.stdout.on('data', (d: Buffer) => out.push(d));
    p.stderr.on('data', (d: Buffer) => err.push(d));
    p.on('error', reject);
    p.on('close', (code) => resolve({ code: code ?? -1, stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() }));
  });
}

/** Runs promise factories at most `n` at a time, results in input order. */
export async function limited<T>(n: number, jobs: (() => Promise<T>)[]): Promise<T[]> {
  const res: T[] = new Array(jobs.length);
  let next = 0;
  const worker = async () => {
    while (next < jobs.length) {
      const i = next++;
      res[i] = await jobs[i]();
    }
  };
  await Promise.all(Array.from({ length: Math.min(n, jobs.length) }, worker));
  return res;
}

const PYTHON = '/usr/bin/python3';
let onnxAvailable: boolean | null = null;

/** True when /usr/bin/python3 can import onnx (Debian python3-onnx). */
export function pythonOnnxAvailable(): boolean {
  if (onnxAvailable === null) {
    const r = spawnSync(PYTHON, ['-c', 'import onnx'], { encoding: 'utf8' });
    onnxAvailable = r.status === 0;
  }
  return onnxAvailable;
}

export const SKIP_CHECKER_MSG = `${PYTHON} cannot import onnx (install python3-onnx); skipping the ONNX checker`;

/**
 * Runs onnx.checker.check_model(..., full_check=True) on each file; returns '' when all pass, else the
 * checker's messages. Callers skip when {@link pythonOnnxAvailable} is false.
 */
export function onnxCheck(files: string[]): string {
  const script =
    'import onnx,sys\n' +
    'bad=[]\n' +
    'for f in sys.argv[1:]:\n' +
    '    try:\n' +
    '        onnx.checker.check_model(onnx.load(f), full_check=True)\n' +
    '    except Exception as e:\n' +
    '        bad.append(f + ": " + str(e))\n' +
    'print("\\n".join(bad))\n' +
    'sys.exit(1 if bad else 0)\n';
  const r = spawnSync(PYTHON, ['-c', script, ...files], { encoding: 'utf8' });
  if (r.status === 0) return '';
  return (r.stdout + r.stderr).trim() || `checker exited ${r.status}`;
}

export function readOnnx(file: string): onnx.ModelProto {
  return decodeModel(fs.readFileSync(file));
}

/** [name, dims] of a value info; symbolic dims as their name. */
export function vinfo(v: onnx.IValueInfoProto): { name: string; elemType: number; dims: (number | string)[] } {
  const t = v.type!.tensorType!;
  return {
    name: v.name!,
    elemType: t.elemType!,
    dims: (t.shape?.dim ?? []).map((d) => (d.dimParam ? d.dimParam : Number(d.dimValue))),
  };
}

/** Parameter tensors of a checkpoint by name. */
export function checkpointTensors(file: string): Map<string, Float32Array> {
  const ck = readCheckpoint(file);
  return new Map(ck.requiresGradParams.concat(ck.frozenParams).map((t) => [t.name, Float32Array.from(t.data)]));
}

export const TIMING_COLUMNS = ['epoch_seconds', 'samples_per_s'];

/** metrics.jsonl rows without the timing columns. */
export function metricsNoTiming(runDir: string): Record<string, number>[] {
  const f = path.join(runDir, 'metrics.jsonl');
  return fs
    .readFileSync(f, 'utf8')
    .split('\n')
    .filter((l) => l.trim())
    .map((l) => {
      const o = JSON.parse(l) as Record<string, number>;
      for (const k of TIMING_COLUMNS) delete o[k];
      return o;
    });
}

/** Every file under `dir`, recursively, relative paths. */
export function listFiles(dir: string): string[] {
  const out: string[] = [];
  const walk = (d: string, rel: string) => {
    for (const e of fs.readdirSync(d, { withFileTypes: true })) {
      if (e.isDirectory()) walk(path.join(d, e.name), path.join(rel, e.name));
      else out.push(path.join(rel, e.name));
    }
  };
  walk(dir, '');
  return out;
}
