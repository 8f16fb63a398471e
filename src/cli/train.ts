/** `ljtrain train GRAPHS`: trains a built graph on onnxruntime-node, resumable. */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunConfig, TrainConfig, validateConfig } from '../config';
import { buildEval, buildNativeTrainStep, nextName } from '../artifacts/graphs';
import { readManifest } from '../artifacts/manifest';
import { encodeModel } from '../onnx/proto';
import { stateName, stateSlots } from '../optim/optimizers';
import { ExecutionProvider, UserError } from '../runtime/session';
import { initialState, loadTrainState } from '../train/state';
import { TrainResult, train } from '../train/trainer';
import { ARTIFACT_FILES } from '../artifacts/ort-artifacts';
import { ORT_PROPS, TrainingModelKey, buildOrtFromConfig, checkOrtTrainConfig, lrSchedule, ortOptimizerModel, sameKey, trainingModelKey } from '../artifacts/ort-build';
import { readCheckpoint } from '../artifacts/checkpoint';
import { OrtTrainBackend } from '../train/ort-backend';
import type { Manifest } from '../artifacts/manifest';
import { ORT_WEB_VERSION } from '../runtime/ort-training';
import { choice, intList, num, posInt } from './options';
import { writeFileAtomic } from '../util/atomic-write';

export interface TrainCliOptions {
  data?: string; epochs?: number; batch?: number; optimizer?: 'adamw' | 'sgd'; lr?: number; weightDecay?: number;
  momentum?: number; schedule?: TrainConfig['schedule']; warmupEpochs?: number; minLr?: number; milestones?: number[];
  period?: number; seed?: number; threads?: number; spin?: boolean; ep?: ExecutionProvider; run?: string; resume?: boolean; force?: boolean;
  flip?: boolean; recipe?: 'vit' | 'resnet'; progress?: boolean; stopAfterEpochs?: number; quiet?: boolean;
  /** native: the fused train step on onnxruntime-node (default); ort-training: ONNX Runtime's training API on the ORT artifacts. */
  backend?: TrainBackendKind;
}

export type TrainBackendKind = 'native' | 'ort-training';

/** The paper's training recipes (appendix E.3). */
export const RECIPES: Record<'vit' | 'resnet', Partial<TrainConfig>> = {
  vit: { optimizer: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, weightDecay: 5e-5, schedule: 'cosine', warmupEpochs: 5, period: 200, minLr: 1e-5, batch: 64 },
  resnet: { optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, schedule: 'multistep', milestones: [41, 61, 81], gamma: 0.1, batch: 64 },
};

export function applyTrainOverrides(cfg: RunConfig, o: TrainCliOptions): RunConfig {
  const c: RunConfig = JSON.parse(JSON.stringify(cfg));
  if (o.recipe) Object.assign(c.train, RECIPES[o.recipe]);
  const t = c.train as unknown as Record<string, unknown>;
  for (const k of ['epochs', 'batch', 'optimizer', 'lr', 'weightDecay', 'momentum', 'schedule', 'warmupEpochs', 'minLr', 'milestones', 'period', 'seed', 'flip'] as const) {
    if (o[k] !== undefined) t[k] = o[k];
  }
  return validateConfig(c);
}


export const RUN_CONFIG = 'run-config.json';

/** Starts or resumes a run from a graphs folder. */
export async function trainRun(graphsDir: string, o: TrainCliOptions): Promise<TrainResult> {
  const manifest = readManifest(graphsDir);
  const runDir = o.run ?? path.join('runs', path.basename(path.resolve(graphsDir)));
  const last = path.join(runDir, 'last.ckpt');
  const log = o.quiet ? () => {} : (l: string) => console.log(l);
  let cfg: RunConfig;
  let trainStep: Uint8Array, evalModel: Uint8Array;
  const expected = manifest.params;

  if (fs.existsSync(last) && !o.resume && !o.force) {
    throw new UserError(`${runDir} already holds a run (last.ckpt): pass --resume to continue it, --force to start over, or --run DIR for a new one`);
  }
  let backend: TrainBackendKind = o.backend ?? 'native';
  if (o.resume && fs.existsSync(last)) {
    const recorded = recordedBackend(runDir);
    if (o.backend && o.backend !== recorded) throw new UserError(`${runDir} was trained with --backend ${recorded}; resume it with the same backend (or start a new run with --run DIR)`);
    backend = recorded;
  }
  if (backend === 'ort-training') return trainRunOrt(graphsDir, manifest, runDir, o, log);
  if (!manifest.files['train_step.onnx']) {
    throw new UserError(`${graphsDir} holds only ONNX Runtime training artifacts (build-graph --format ort): train it with --backend ort-training, or rebuild with --format native or both`);
  }
  if (o.resume && fs.existsSync(last)) {
    const rc = path.join(runDir, RUN_CONFIG);
    if (!fs.existsSync(rc)) throw new UserError(`${runDir} has last.ckpt but no ${RUN_CONFIG}; cannot resume`);
    cfg = JSON.parse(fs.readFileSync(rc, 'utf8'));
    if (o.epochs !== undefined) cfg.train.epochs = o.epochs;
    trainStep = fs.readFileSync(path.join(runDir, 'train_step.onnx'));
    evalModel = fs.readFileSync(path.join(runDir, 'eval.onnx'));
  } else {
    if (o.force) for (const f of ['last.ckpt', 'best.ckpt', 'metrics.csv', 'metrics.jsonl']) fs.rmSync(path.join(runDir, f), { force: true });
    cfg = applyTrainOverrides(manifest.config, o);
    fs.mkdirSync(runDir, { recursive: true });
    if (cfg.train.optimizer === manifest.optimizer) {
      trainStep = fs.readFileSync(path.join(graphsDir, 'train_step.onnx'));
    } else {
      log(`rebuilding the train step for --optimizer ${cfg.train.optimizer} (the graphs were built for ${manifest.optimizer})`);
      trainStep = encodeModel(buildNativeTrainStep(cfg, cfg.train.optimizer).model);
    }
    evalModel = fs.existsSync(path.join(graphsDir, 'eval.onnx')) ? fs.readFileSync(path.join(graphsDir, 'eval.onnx')) : encodeModel(buildEval(cfg));
    writeFileAtomic(path.join(runDir, 'train_step.onnx'), trainStep);
    writeFileAtomic(path.join(runDir, 'eval.onnx'), evalModel);
    writeFileAtomic(path.join(runDir, RUN_CONFIG), JSON.stringify({ ...cfg, graphs: path.resolve(graphsDir), backend: 'native' }, null, 2) + '\n');
  }

  const kind = cfg.train.optimizer;
  const nextNames = new Map<string, string>();
  for (const p of expected) {
    nextNames.set(p.name, nextName(p.name));
    for (const s of stateSlots(kind)) nextNames.set(stateName(s, p.name), nextName(stateName(s, p.name)));
  }
  let state;
  if (o.resume && fs.existsSync(last)) {
    state = loadTrainState(last, expected, nextNames).state;
    if (state.optimizer !== kind) throw new UserError(`${last} holds ${state.optimizer} state but the run uses ${kind}`);
    if (state.frozen?.size) throw new UserError(`${last} has frozen parameters (${[...state.frozen].join(', ')}), which the native train step would train; use --backend ort-training`);
    log(`resuming ${runDir} at epoch ${state.epoch + 1} (step ${state.step})`);
  } else {
    const init = loadTrainState(path.join(graphsDir, 'initial.ckpt'), expected, new Map()).state;
    state = initialState([...init.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), kind, cfg.train.seed, nextNames);
  }
  if (state.epoch >= cfg.train.epochs) log(`${runDir} already finished ${state.epoch} epochs (pass --epochs N to train longer)`);
  return train(cfg, {
    runDir, trainStep, evalModel, state, dataDir: o.data, threads: o.threads, spinning: o.spin, ep: o.ep, log, progress: o.progress !== false && !o.quiet,
    stopAfterEpochs: o.stopAfterEpochs,
  });
}

/** The backend a run folder was trained with (run-config.json; runs from before the option: native). */
function recordedBackend(runDir: string): TrainBackendKind {
  const rc = path.join(runDir, RUN_CONFIG);
  if (!fs.existsSync(rc)) throw new UserError(`${runDir} has last.ckpt but no ${RUN_CONFIG}; cannot resume`);
  let j: { backend?: string };
  try {
    j = JSON.parse(fs.readFileSync(rc, 'utf8'));
  } catch (e) {
    throw new UserError(`${rc} is not valid JSON (${(e as Error).message}); cannot resume`);
  }
  return j.backend === 'ort-training' ? 'ort-training' : 'native';
}

/** The ORT training files of a run folder (the models it trains with; optimizer_model.onnx is rebuilt per invocation). */
export const ORT_RUN_FILES = { trainingModel: ARTIFACT_FILES.trainingModel, evalModel: ARTIFACT_FILES.evalModel, optimizerModel: ARTIFACT_FILES.optimizerModel } as const;

/**
 * train --backend ort-training: trains the graphs folder's ORT artifacts through ONNX Runtime's
 * training API (onnxruntime-web's training wasm build, 1 thread). The run folder gets copies of the
 * training and eval models it uses, and an optimizer model rebuilt for this invocation with the
 * run's per-step lr table (the runtime feeds a fixed 0.001; see src/artifacts/ort-build.ts).
 */
async function trainRunOrt(graphsDir: string, manifest: Manifest, runDir: string, o: TrainCliOptions, log: (l: string) => void): Promise<TrainResult> {
  const last = path.join(runDir, 'last.ckpt');
  const expected = manifest.params;
  if (o.ep === 'cuda') throw new UserError('--backend ort-training runs on the CPU (onnxruntime-web training wasm build); drop --ep cuda');
  let cfg: RunConfig;
  let trainingModel: Uint8Array, evalModel: Uint8Array;
  let state;
  if (o.resume && fs.existsSync(last)) {
    cfg = JSON.parse(fs.readFileSync(path.join(runDir, RUN_CONFIG), 'utf8'));
    if (o.epochs !== undefined) cfg.train.epochs = o.epochs;
    checkOrtTrainConfig(cfg.train);
    state = loadTrainState(last, expected, new Map()).state;
    if (state.optimizer !== cfg.train.optimizer) throw new UserError(`${last} holds ${state.optimizer} state but the run uses ${cfg.train.optimizer}`);
    trainingModel = readRunFile(runDir, ORT_RUN_FILES.trainingModel);
    evalModel = readRunFile(runDir, ORT_RUN_FILES.evalModel);
    log(`resuming ${runDir} at epoch ${state.epoch + 1} (step ${state.step}) on ONNX Runtime training (onnxruntime-web ${ORT_WEB_VERSION}, wasm, 1 thread)`);
  } else {
    const missing = Object.values(ARTIFACT_FILES).filter((f) => !manifest.files[f]);
    if (missing.length) {
      throw new UserError(`${graphsDir} has no ONNX Runtime training artifacts (${missing.join(', ')} missing): rebuild with ljtrain build-graph --preset ${manifest.preset} --format ort (or both)`);
    }
    cfg = applyTrainOverrides(manifest.config, o);
    checkOrtTrainConfig(cfg.train);
    const ckFile = path.join(graphsDir, ARTIFACT_FILES.checkpoint);
    const init = loadTrainState(ckFile, expected, new Map()).state;
    const props = readCheckpoint(ckFile).properties.strings;
    let built: TrainingModelKey | null = null;
    try {
      built = props[ORT_PROPS.trainingModel] ? (JSON.parse(props[ORT_PROPS.trainingModel]) as TrainingModelKey) : null;
    } catch {
      built = null;
    }
    const want = trainingModelKey(cfg.train);
    if (built && sameKey(built, want)) {
      trainingModel = fs.readFileSync(path.join(graphsDir, ARTIFACT_FILES.trainingModel));
      evalModel = fs.readFileSync(path.join(graphsDir, ARTIFACT_FILES.evalModel));
    } else {
      log(`rebuilding the ORT training model for --optimizer ${want.optimizer}${want.optimizer === 'sgd' ? ` --weight-decay ${want.sgdWeightDecay}` : ''} (the artifacts were built for ${built ? `${built.optimizer}${built.optimizer === 'sgd' ? ` with weight decay ${built.sgdWeightDecay}` : ''}` : 'another setup'})`);
      const art = buildOrtFromConfig(cfg, { frozen: [...(init.frozen ?? [])] });
      trainingModel = encodeModel(art.trainingModel);
      evalModel = encodeModel(art.evalModel);
    }
    if (o.force) for (const f of ['last.ckpt', 'best.ckpt', 'metrics.csv', 'metrics.jsonl']) fs.rmSync(path.join(runDir, f), { force: true });
    fs.mkdirSync(runDir, { recursive: true });
    writeFileAtomic(path.join(runDir, ORT_RUN_FILES.trainingModel), trainingModel);
    writeFileAtomic(path.join(runDir, ORT_RUN_FILES.evalModel), evalModel);
    writeFileAtomic(path.join(runDir, RUN_CONFIG), JSON.stringify({ ...cfg, graphs: path.resolve(graphsDir), backend: 'ort-training' }, null, 2) + '\n');
    state = initialState([...init.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), cfg.train.optimizer, cfg.train.seed, new Map());
    if (init.frozen?.size) state.frozen = new Set(init.frozen);
    log(`training on ONNX Runtime training (onnxruntime-web ${ORT_WEB_VERSION}, wasm, 1 thread)${state.frozen?.size ? `; frozen: ${[...state.frozen].join(', ')}` : ''}`);
  }
  if (state.epoch >= cfg.train.epochs) log(`${runDir} already finished ${state.epoch} epochs (pass --epochs N to train longer)`);
  const runCfg = cfg;
  const tm = trainingModel, em = evalModel;
  return train(runCfg, {
    runDir,
    state,
    dataDir: o.data,
    log,
    progress: o.progress !== false && !o.quiet,
    stopAfterEpochs: o.stopAfterEpochs,
    backend: async (st, run) => {
      // The lr the runtime applies at every step of this run: the schedule as the trainer computes it.
      const t = runCfg.train;
      const lrs = t.schedule === 'constant' ? t.lr : lrSchedule(t, run.stepsPerEpoch);
      const optimizerModel = encodeModel(ortOptimizerModel(t, lrs));
      writeFileAtomic(path.join(runDir, ORT_RUN_FILES.optimizerModel), optimizerModel);
      return OrtTrainBackend.create(runCfg, st, {
        trainingModel: tm,
        evalModel: em,
        optimizerModel,
        lrs,
        sources: Object.values(ORT_RUN_FILES).map((f) => path.join(runDir, f)),
      });
    },
  });
}

function readRunFile(runDir: string, f: string): Uint8Array {
  const p = path.join(runDir, f);
  if (!fs.existsSync(p)) throw new UserError(`${p} is missing; cannot resume this ort-training run`);
  return fs.readFileSync(p);
}

export function addTrainOptions(c: Command): Command {
  return c
    .option('--data <dir>', 'dataset folder (default data/fashion-mnist, then /usr/share/datasets/fashion-mnist, then the embedded subset)')
    .option('--epochs <e>', 'epochs', posInt('epochs'))
    .option('--batch <b>', 'batch size', posInt('batch'))
    .option('--recipe <r>', "the paper's recipe: vit (AdamW 1e-3, 5 warmup, cosine 200) or resnet (SGD 0.1, x0.1 at 41,61,81)", choice('recipe', ['vit', 'resnet'] as const))
    .option('--optimizer <o>', 'adamw or sgd', choice('optimizer', ['adamw', 'sgd'] as const))
    .option('--lr <lr>', 'learning rate', num('lr'))
    .option('--weight-decay <wd>', 'weight decay', num('weight-decay'))
    .option('--momentum <m>', 'SGD momentum', num('momentum'))
    .option('--schedule <s>', 'cosine, multistep or constant', choice('schedule', ['cosine', 'multistep', 'constant'] as const))
    .option('--warmup-epochs <w>', 'linear warmup epochs (cosine)', num('warmup-epochs'))
    .option('--min-lr <lr>', 'cosine floor', num('min-lr'))
    .option('--period <p>', 'cosine period in epochs (0: the rest of the run)', num('period'))
    .option('--milestones <list>', 'multistep epochs, e.g. 41,61,81', intList('milestones'))
    .option('--seed <s>', 'data order / augmentation seed', posInt('seed'))
    .option('--no-flip', 'disable the random horizontal flip')
    .option('--threads <n>', 'intra-op threads (default: all cores)', posInt('threads'))
    .option('--spin', 'let ORT worker threads spin-wait between ops (faster when nothing else needs the cores)')
    .option('--ep <ep>', 'execution provider: cpu or cuda', choice('ep', ['cpu', 'cuda'] as const))
    .option('--no-progress', 'no progress bar');
}

export function trainCommand(): Command {
  return addTrainOptions(
    new Command('train')
      .description('train a graphs folder on onnxruntime-node (or --backend ort-training); writes runs/NAME (metrics, checkpoints)')
      .argument('<graphs>', 'folder written by build-graph'),
  )
    .option('--backend <b>', 'native: fused train step on onnxruntime-node (default); ort-training: ONNX Runtime training API on the ORT artifacts (build-graph --format ort), onnxruntime-web wasm, 1 thread', choice('backend', ['native', 'ort-training'] as const))
    .option('--run <dir>', 'run folder (default runs/<graphs name>)')
    .option('--resume', 'continue the run in --run from its last checkpoint')
    .option('--force', 'start over, discarding the checkpoints in the run folder')
    .action(async (graphs: string, o: TrainCliOptions) => {
      const r = await trainRun(graphs, o);
      const m = r.metrics[r.metrics.length - 1];
      if (m) console.log(`final test accuracy ${(100 * m.test_acc).toFixed(2)}% (max ${(100 * m.max_test_acc).toFixed(2)}%)`);
    });
}
