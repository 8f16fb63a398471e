/** `ljtrain eval RUN` and `ljtrain export RUN --out model.onnx`. */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunConfig, validateConfig } from '../config';
import { buildEval, buildForward, buildInference } from '../artifacts/graphs';
import { Checkpoint, CheckpointError, checkParamsMatch, readCheckpoint } from '../artifacts/checkpoint';
import { inferenceFromEvalModel } from '../artifacts/ort-build';
import { decodeModel, onnx } from '../onnx/proto';
import { loadDataset } from '../data/load';
import { epochBatches } from '../data/batches';
import { encodeModel } from '../onnx/proto';
import { UserError, createSession, runAll, tensor } from '../runtime/session';
import { stateFromCheckpoint } from '../train/state';
import { evaluate } from '../train/trainer';
import { RUN_CONFIG } from './train';
import { writeFileAtomic } from '../util/atomic-write';

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
  return { cfg, weights: weightsFromCheckpoint(ckptFile, cfg), ckptFile };
}

/** The model's parameters (names, shapes) for a config. */
export function modelParams(cfg: RunConfig): { name: string; shape: number[] }[] {
  return buildForward(cfg, false).b.params.map((p) => ({ name: p.value.name, shape: p.value.shape as number[] }));
}

/** All parameter tensors of a checkpoint; with a config, refused unless they are exactly the model's (names and shapes). */
export function weightsFromCheckpoint(file: string, cfg?: RunConfig): Map<string, Float32Array> {
  const ck = readCheckpoint(file);
  if (cfg) checkParamsMatch(ck, modelParams(cfg), file);
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
  return writeAndVerify(model, cfg, o);
}

/** Property of ljtrain checkpoints that holds the run config (src/train/state.ts). */
const CONFIG_PROP = 'ljtrain.config';

/**
 * Exports an ODTC checkpoint (e.g. an ORT training run's, or any `checkpoint` with its
 * eval_model.onnx): with the run config in the checkpoint's property bag, the inference graph is
 * rebuilt from it (the eval model, if given, must then take the same parameters); without one, the
 * eval model's forward part is kept (input → logits, loss nodes dropped) with the checkpoint's
 * tensors as initializers. Everything is checked before the output is written.
 */
export async function exportCheckpoint(ckptFile: string, o: { evalModel?: string; out: string; withFeatures?: boolean; verify?: boolean; data?: string }) {
  const ck = readCheckpoint(ckptFile);
  let evalModel: onnx.ModelProto | null = null;
  if (o.evalModel) {
    let bytes: Buffer;
    try {
      bytes = fs.readFileSync(o.evalModel);
    } catch (e) {
      throw new UserError(`cannot read the eval model ${o.evalModel}: ${(e as Error).message}`);
    }
    try {
      evalModel = decodeModel(bytes);
    } catch (e) {
      throw new UserError(`${o.evalModel} is not an ONNX model (${(e as Error).message.split('\n')[0]})`);
    }
  }
  const cfg = configOf(ck, ckptFile);
  if (cfg) {
    checkParamsMatch(ck, modelParams(cfg), ckptFile);
    if (evalModel) inferenceFromEvalModel(evalModel, ck, { source: o.evalModel, ckptSource: ckptFile }); // same parameters, or refused
    const weights = new Map(ck.requiresGradParams.concat(ck.frozenParams).map((t) => [t.name, t.data]));
    return { ...(await writeAndVerify(buildInference(cfg, weights, !!o.withFeatures), cfg, o)), from: 'config' as const };
  }
  if (!evalModel) throw new UserError(`${ckptFile} holds no run config (property ${CONFIG_PROP}); pass its eval model with --eval-model FILE`);
  if (o.withFeatures) throw new UserError('--with-features needs the run config in the checkpoint; the eval model exposes only logits');
  const model = inferenceFromEvalModel(evalModel, ck, { source: o.evalModel, ckptSource: ckptFile });
  return { ...(await writeAndVerify(model, null, o)), from: 'eval-model' as const };
}

function configOf(ck: Checkpoint, file: string): RunConfig | null {
  const s = ck.properties.strings[CONFIG_PROP];
  if (!s) return null;
  try {
    return validateConfig(JSON.parse(s) as RunConfig);
  } catch (e) {
    throw new CheckpointError(`${file}: the run config in its property bag (${CONFIG_PROP}) is unusable: ${(e as Error).message}`);
  }
}

/** Writes the model atomically and, with a config and unless skipped, measures its test accuracy. */
async function writeAndVerify(model: onnx.ModelProto, cfg: RunConfig | null, o: { out: string; verify?: boolean; data?: string }) {
  const bytes = encodeModel(model);
  fs.mkdirSync(path.dirname(path.resolve(o.out)), { recursive: true });
  writeFileAtomic(o.out, bytes, 'ONNX model');
  let acc: number | null = null;
  if (cfg && o.verify !== false) {
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
    .argument('[run]', 'run folder (native or ort-training run)')
    .requiredOption('--out <file>', 'output .onnx file')
    .option('--checkpoint <file>', 'export an ODTC checkpoint instead of a run (its config from the property bag, or --eval-model)')
    .option('--eval-model <file>', 'with --checkpoint: the eval model (eval_model.onnx) whose forward part to keep')
    .option('--with-features', 'also output the named feature tensors')
    .option('--best', 'use the best checkpoint')
    .option('--no-verify', 'skip measuring the exported model on the test split')
    .option('--data <dir>', 'dataset folder')
    .action(async (run: string | undefined, o: { out: string; checkpoint?: string; evalModel?: string; withFeatures?: boolean; best?: boolean; verify?: boolean; data?: string }) => {
      if (o.checkpoint) {
        if (run) throw new UserError('give either a run folder or --checkpoint FILE, not both');
        if (o.best) throw new UserError('--best applies to run folders; with --checkpoint name the file');
        const r = await exportCheckpoint(o.checkpoint, o);
        console.log(`wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB, ${r.from === 'config' ? 'rebuilt from the config in the checkpoint' : 'forward part of the eval model'})` + (r.acc !== null ? `; its test accuracy: ${(100 * r.acc).toFixed(2)}%` : ''));
        return;
      }
      if (!run) throw new UserError('export needs a run folder, or --checkpoint FILE [--eval-model FILE]');
      if (o.evalModel) throw new UserError('--eval-model goes with --checkpoint FILE');
      const r = await exportRun(run, o);
      console.log(`wrote ${r.out} (${(r.bytes / 1024).toFixed(0)} KiB)` + (r.acc !== null ? `; its test accuracy: ${(100 * r.acc).toFixed(2)}%` : ''));
    });
}
