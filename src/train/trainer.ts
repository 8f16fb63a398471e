/**
 * The native trainer: runs the fused train-step graph on onnxruntime-node, schedules the learning
 * rate, evaluates each epoch with the eval graph, logs metrics and writes atomic checkpoints.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { RunConfig } from '../config';
import { loadDataset } from '../data/load';
import { epochBatches, numBatches } from '../data/batches';
import type { Dataset } from '../data/dataset';
import { Rng } from '../graph/rng';
import { hyperFeeds } from '../optim/optimizers';
import { lrAt } from '../optim/schedule';
import { ExecutionProvider, UserError, createSession, ort, runAll, tensor } from '../runtime/session';
import { EpochMetrics, appendMetrics, formatMetrics, readMetrics, truncateMetrics } from './metrics';
import { Progress } from './progress';
import { TrainState, loadTrainState, saveTrainState } from './state';

export interface TrainOptions {
  runDir: string;
  /** Native backend: train-step and eval graph bytes. */
  trainStep?: Uint8Array;
  evalModel?: Uint8Array;
  /** Another backend (e.g. ORT training), made once the state and the data size are known. */
  backend?: (state: TrainState, run: { trainSamples: number; stepsPerEpoch: number }) => Promise<TrainBackend>;
  /** Initial state (fresh run) or the checkpoint to resume from. */
  state: TrainState;
  dataDir?: string;
  threads?: number;
  /** Let ORT's worker threads spin-wait between ops (see README, Benchmarks). */
  spinning?: boolean;
  ep?: ExecutionProvider;
  /** Print progress and metrics (default true). */
  log?: (line: string) => void;
  progress?: boolean;
  /** Stop after this many epochs of this invocation (tests use it to simulate a kill). */
  stopAfterEpochs?: number;
  /** Test-split evaluation batch size. */
  evalBatch?: number;
}

export interface TrainResult {
  metrics: EpochMetrics[];
  state: TrainState;
}

/** Feeds for the parameter and optimizer-state inputs. */
function stateFeeds(state: TrainState, feeds: Record<string, ort.Tensor>, withOpt: boolean): void {
  for (const [name, p] of state.params) feeds[name] = tensor('float32', p.data, p.shape);
  if (withOpt) for (const [name, s] of state.opt) feeds[name] = tensor('float32', s.data, state.params.get(s.param)!.shape);
}

/** Evaluates a dataset with the eval graph and the given parameters. */
export async function evaluate(session: ort.InferenceSession, state: TrainState, ds: Dataset, batch = 500): Promise<{ loss: number; acc: number }> {
  let loss = 0, correct = 0;
  for (const bt of epochBatches(ds, { batchSize: batch })) {
    const feeds: Record<string, ort.Tensor> = {
      input: tensor('float32', bt.x, [bt.size, ds.channels, ds.height, ds.width]),
      labels: tensor('int64', bt.y, [bt.size]),
    };
    stateFeeds(state, feeds, false);
    const out = await runAll(session, feeds, 'evaluating the test split');
    loss += (out.ce_loss.data as Float32Array)[0] * bt.size;
    correct += (out.correct.data as Float32Array)[0];
  }
  return { loss: loss / ds.n, acc: correct / ds.n };
}

export interface StepResult {
  loss: number;
  ce: number;
  lj: number;
  correct: number;
}

/**
 * What runs the steps: the native fused train step on onnxruntime-node, or ORT's training runtime.
 * The trainer owns the loop, schedule, data order, metrics and checkpoints; a backend owns the
 * parameters while training and writes them back into the TrainState on sync().
 */
export interface TrainBackend {
  readonly name: string;
  /** One optimizer step (number state.step + 1) on a batch at learning rate lr. */
  step(x: Float32Array, y: BigInt64Array, dims: number[], lr: number): Promise<StepResult>;
  evaluate(ds: Dataset): Promise<{ loss: number; acc: number }>;
  /** Brings state.params / state.opt up to date (before a checkpoint or the end). */
  sync(): Promise<void>;
  release(): Promise<void>;
}

/** The native backend: one onnxruntime-node run does forward, backward and the update. */
export class NativeBackend implements TrainBackend {
  readonly name = 'native';
  private constructor(private readonly cfg: RunConfig, private readonly state: TrainState, private readonly trainSess: ort.InferenceSession, private readonly evalSess: ort.InferenceSession, private readonly evalBatch?: number) {}

  static async create(cfg: RunConfig, state: TrainState, trainStep: Uint8Array, evalModel: Uint8Array, sess: { ep?: ExecutionProvider; threads?: number; spinning?: boolean }, evalBatch?: number): Promise<NativeBackend> {
    const sessCfg = { ep: sess.ep ?? 'cpu', threads: sess.threads ?? 0, spinning: sess.spinning };
    const trainSess = await createSession(trainStep, sessCfg, 'train-step graph');
    const evalSess = await createSession(evalModel, sessCfg, 'eval graph');
    return new NativeBackend(cfg, state, trainSess, evalSess, evalBatch);
  }

  async step(x: Float32Array, y: BigInt64Array, dims: number[], lr: number): Promise<StepResult> {
    const state = this.state;
    const feeds: Record<string, ort.Tensor> = { input: tensor('float32', x, dims), labels: tensor('int64', y, [dims[0]]) };
    for (const [k, v] of Object.entries(hyperFeeds(this.cfg.train, lr, state.step + 1))) feeds[k] = tensor('float32', Float32Array.of(v), []);
    stateFeeds(state, feeds, true);
    const out = await runAll(this.trainSess, feeds, `running train step ${state.step + 1}`);
    for (const [input, output] of state.nextNames) {
      const data = out[output].data as Float32Array;
      const p = state.params.get(input);
      if (p) p.data = data;
      else state.opt.get(input)!.data = data;
    }
    const f = (k: string) => (out[k].data as Float32Array)[0];
    return { loss: f('loss'), ce: f('ce_loss'), lj: f('lj_loss'), correct: f('correct') };
  }

  evaluate(ds: Dataset): Promise<{ loss: number; acc: number }> {
    return evaluate(this.evalSess, this.state, ds, this.evalBatch);
  }

  async sync(): Promise<void> {}

  async release(): Promise<void> {
    await this.trainSess.release();
    await this.evalSess.release();
  }
}

export async function train(cfg: RunConfig, o: TrainOptions): Promise<TrainResult> {
  const log = o.log ?? ((l: string) => console.log(l));
  const t = cfg.train;
  const data = loadDataset(cfg, o.dataDir);
  if (data.embedded) log(`data: embedded Fashion-MNIST subset (${data.train.n} train / ${data.test.n} test) — see README to use the full set`);
  else log(`data: ${data.source} (${data.train.n} train / ${data.test.n} test)`);
  const state = o.state;
  const steps = numBatches(data.train.n, t.batch);
  const backend = o.backend ? await o.backend(state, { trainSamples: data.train.n, stepsPerEpoch: steps }) : await NativeBackend.create(cfg, state, o.trainStep!, o.evalModel!, o, o.evalBatch);
  fs.mkdirSync(o.runDir, { recursive: true });
  truncateMetrics(o.runDir, state.epoch);
  const [C, H, W] = cfg.model.image;
  let ran = 0;
  while (state.epoch < t.epochs) {
    const epoch = state.epoch; // 0-based index of the epoch being run
    const rng = Rng.fromState(state.rng);
    const t0 = performance.now();
    let ce = 0, lj = 0, correct = 0, seen = 0, lr = 0;
    const bar = new Progress(`epoch ${epoch + 1}/${t.epochs}`, steps, o.progress !== false);
    let i = 0;
    for (const bt of epochBatches(data.train, { batchSize: t.batch, shuffle: true, rng, flip: t.flip })) {
      lr = lrAt(t, epoch + i / steps, t.epochs);
      const r = await backend.step(bt.x, bt.y, [bt.size, C, H, W], lr);
      if (!Number.isFinite(r.loss)) throw new UserError(`training diverged: loss is ${r.loss} at epoch ${epoch + 1} step ${i + 1} (lower --lr?)`);
      state.step++;
      const c = r.ce, j = r.lj;
      ce += c * bt.size;
      lj += j * bt.size;
      correct += r.correct;
      seen += bt.size;
      i++;
      bar.tick({ loss: c + j, lr });
    }
    const trainSeconds = (performance.now() - t0) / 1000;
    bar.stop();
    const ev = await backend.evaluate(data.test);
    await backend.sync();
    const prevMax = readMetrics(o.runDir).reduce((m, r) => Math.max(m, r.test_acc), 0);
    const m: EpochMetrics = {
      epoch: epoch + 1,
      lr,
      train_ce: ce / seen,
      train_lj: lj / seen,
      train_acc: correct / seen,
      test_loss: ev.loss,
      test_acc: ev.acc,
      max_test_acc: Math.max(prevMax, ev.acc),
      epoch_seconds: (performance.now() - t0) / 1000,
      samples_per_s: seen / trainSeconds,
    };
    state.epoch = epoch + 1;
    state.rng = rng.state();
    appendMetrics(o.runDir, m);
    saveTrainState(path.join(o.runDir, 'last.ckpt'), state, cfg);
    if (ev.acc >= prevMax) saveTrainState(path.join(o.runDir, 'best.ckpt'), state, cfg);
    log(formatMetrics(m));
    ran++;
    if (o.stopAfterEpochs !== undefined && ran >= o.stopAfterEpochs) break;
  }
  await backend.sync();
  await backend.release();
  return { metrics: readMetrics(o.runDir), state };
}

export { loadTrainState };
