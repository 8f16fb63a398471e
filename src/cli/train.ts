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
import { choice, intList, num, posInt } from './options';

export interface TrainCliOptions {
  data?: string; epochs?: number; batch?: number; optimizer?: 'adamw' | 'sgd'; lr?: number; weightDecay?: number;
  momentum?: number; schedule?: TrainConfig['schedule']; warmupEpochs?: number; minLr?: number; milestones?: number[];
  period?: number; seed?: number; threads?: number; ep?: ExecutionProvider; run?: string; resume?: boolean; force?: boolean;
  flip?: boolean; recipe?: 'vit' | 'resnet'; progress?: boolean; stopAfterEpochs?: number; quiet?: boolean;
}

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

function writeAtomic(file: string, data: Uint8Array | string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
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
    writeAtomic(path.join(runDir, 'train_step.onnx'), trainStep);
    writeAtomic(path.join(runDir, 'eval.onnx'), evalModel);
    writeAtomic(path.join(runDir, RUN_CONFIG), JSON.stringify({ ...cfg, graphs: path.resolve(graphsDir) }, null, 2) + '\n');
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
    log(`resuming ${runDir} at epoch ${state.epoch + 1} (step ${state.step})`);
  } else {
    const init = loadTrainState(path.join(graphsDir, 'initial.ckpt'), expected, new Map()).state;
    state = initialState([...init.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), kind, cfg.train.seed, nextNames);
  }
  if (state.epoch >= cfg.train.epochs) log(`${runDir} already finished ${state.epoch} epochs (pass --epochs N to train longer)`);
  return train(cfg, {
    runDir, trainStep, evalModel, state, dataDir: o.data, threads: o.threads, ep: o.ep, log, progress: o.progress !== false && !o.quiet,
    stopAfterEpochs: o.stopAfterEpochs,
  });
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
    .option('--ep <ep>', 'execution provider: cpu or cuda', choice('ep', ['cpu', 'cuda'] as const))
    .option('--no-progress', 'no progress bar');
}

export function trainCommand(): Command {
  return addTrainOptions(
    new Command('train')
      .description('train a graphs folder on onnxruntime-node; writes runs/NAME (metrics, checkpoints)')
      .argument('<graphs>', 'folder written by build-graph'),
  )
    .option('--run <dir>', 'run folder (default runs/<graphs name>)')
    .option('--resume', 'continue the run in --run from its last checkpoint')
    .option('--force', 'start over, discarding the checkpoints in the run folder')
    .action(async (graphs: string, o: TrainCliOptions) => {
      const r = await trainRun(graphs, o);
      const m = r.metrics[r.metrics.length - 1];
      if (m) console.log(`final test accuracy ${(100 * m.test_acc).toFixed(2)}% (max ${(100 * m.max_test_acc).toFixed(2)}%)`);
    });
}
