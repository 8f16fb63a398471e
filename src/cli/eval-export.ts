/** `ljtrain eval RUN` and `ljtrain export RUN --out model.onnx`. */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config';
import { buildEval, buildInference } from '../artifacts/graphs';
import { readCheckpoint } from '../artifacts/checkpoint';
import { loadDataset } from '../data/load';
import { epochBatches } from '../data/batches';
import { encodeModel } from '../onnx/proto';
import { UserError, createSession, runAll, tensor } from '../runtime/session';
import { stateFromCheckpoint } from '../train/state';
import { evaluate } from '../train/trainer';
import { RUN_CONFIG } from './train';

export interface LoadedRun {
  cfg: RunConfig;
  weights: Map<string, Float32Array>;
  ckptFile: string;
}

/** Reads a run's config and the weights of its last (or best) checkpoint. */
export function loadRun(runDir: string, best = false): LoadedRun {
  const rc = path.join(runDir, RUN_CONFIG);
  if (!fs.existsSync(rc)) throw new UserError(`${runDir} is not a run folder (no ${RUN_CONFIG}); train one with ljtrain train GRAPHS --run ${runDir}`);
  const cfg: RunConfig = JSON.parse(fs.readFileSync(rc, 'utf8'));
  const ckptFile = path.join(runDir, best ? 'best.ckpt' : 'last.ckpt');
  if (!fs.existsSync(ckptFile)) throw new UserError(`${ckptFile} does not exist: the run has not finished an epoch yet`);
  return { cfg, weights: weightsFromCheckpoint(ckptFile), ckptFile };
}

export function weightsFromCheckpoint(file: string): Map<string, Float32Array> {
  const ck = readCheckpoint(file);
  return new Map(ck.requiresGradParams.concat(ck.frozenParams).map((t) => [t.name, t.data]));
}

/** Test metrics of a run's checkpoint with the eval graph. */
export async function evalRun(runDir: string, o: { best?: boolean; data?: string; threads?: number }) {
  const { cfg, ckptFile } = loadRun(runDir, o.best);
  const evalModel = encodeModel(buildEval(cfg));
  const sess = await createSession(evalModel, { threads: o.threads }, 'eval graph');
  const shapes = buildEvalParamShapes(cfg);
  const { state } = stateFromCheckpoint(readCheckpoint(ckptFile), ckptFile, shapes, new Map());
  const data = loadDataset(cfg, o.data);
  const r = await evaluate(sess, state, data.test);
  return { ...r, epoch: state.epoch, ckptFile, n: data.test.n };
}

function buildEvalParamShapes(cfg: RunConfig): { name: string; shape: number[] }[] {
  const m = buildEval(cfg);
  const inits = new Set(['input', 'labels']);
  return (m.graph!.input ?? [])
    .filter((v) => !inits.has(v.name!))
    .map((v) => ({ name: v.name!, shape: v.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue)) }));
}

/** Writes the inference-only model and, unless skipped, reports its test accuracy. */
export async function exportRun(runDir: string, o: { out: string; withFeatures?: boolean; best?: boolean; verify?: boolean; data?: string }) {
  const { cfg, weights } = loadRun(runDir, o.best);
  const model = buildInference(cfg, weights, !!o.withFeatures);
  const bytes = encodeModel(model);
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  const tmp = `${o.out}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, bytes);
  fs.renameSync(tmp, o.out);
  let acc: number | null = null;
  if (o.verify !== false) {
    const sess = await createSession(bytes, {}, `exported model ${o.out}`);
    const data = loadDataset(cfg, o.data);
    let correct = 0;
    const [C, H, W] = cfg.model.image;
    for (const bt of epochBatches(data.test, { batchSize: 500 })) {
      const out = await runAll(sess, { input: tensor('float32', bt.x, [bt.size, C, H, W]) }, 'running the exported model');
      const lg = out.logits.data as Float32Array;
      const K = cfg.model.classes;
      for (let i = 0; i < bt.size; i++) {
        let best = 0;
        for (let k = 1; k < K; k++) if (lg[i * K + k] > lg[i * K + best]) best = k;
        if (BigInt(best) === bt.y[i]) correct++;
      }
    }
    acc = correct / data.test.n;
  }
  return { out: o.out, bytes: bytes.length, acc };
}

export function evalCommand(): Command {
  return new Command('eval')
    .description("print the test metrics of a run's latest (or --best) checkpoint")
    .argument('<run>', 'run folder')
    .option('--best', 'use the best checkpoint')
    .option('--data <dir>', 'dataset folder')
    .action(async (run: string, o: { best?: boolean; data?: string }) => {
      const r = await evalRun(run, o);
      console.log(`${r.ckptFile} (epoch ${r.epoch}): test loss ${r.loss.toFixed(4)}  test acc ${(100 * r.acc).toFixed(2)}% on ${r.n} images`);
    });
}

export function exportCommand(): Command {
  return new Command('export')
    .description('write an inference-only ONNX model (input -> logits) with the trained weights, no LJ/loss/gradients/optimizer')
    .argument('<run>', 'run folder')
    .requiredOption('--out <file>', 'output .onnx file')
    .option('--with-features', 'also output the named feature tensors')
    .option('--best', 'use the best checkpoint')
    .option('--no-verify', 'skip measuring the exported model on the test split')
    .option('--data <dir>', 'dataset folder')
    .action(async (run: string, o: { out: string; withFeatures?: boolean; best?: boolean; verify?: boolean; data?: string }) => {
      const r = await exportRun(run, o);
      console.log(`wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB)` + (r.acc !== null ? `; its test accuracy: ${(100 * r.acc).toFixed(2)}%` : ''));
    });
}
