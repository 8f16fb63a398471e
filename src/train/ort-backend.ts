/**
 * The ORT training backend: runs a run's steps through ONNX Runtime's training API
 * (onnxruntime-web 1.19.2's training wasm build, one thread; src/runtime/ort-training.ts) on the
 * artifacts of src/artifacts/ort-build.ts. The trainer owns the loop, data order, metrics and
 * checkpoints exactly as for the native backend.
 *
 * Learning rate: the runtime always feeds 0.001, so the optimizer model carries the run's
 * per-step lr table (lrAt for every step of the run); step() checks that the lr the trainer asks
 * for is the table's entry for that step.
 *
 * Moments: the web API cannot read AdamW's moments back. The training model also outputs each
 * trainable parameter's gradient (`P.gradient`), and step() repeats the optimizer's moment updates
 * in float32 with the kernel's operation order (ORT AdamWOptimizer, adam_mode 0):
 *   m ← β1·m + (1−β1)·g;   v ← β2·v + ((1−β2)·g)·g
 * so sync() can write params (getContiguousParameters) + moments + step into the checkpoint, and a
 * resumed run creates its session from that checkpoint with the moments it would have had.
 */
import type { RunConfig } from '../config';
import { epochBatches } from '../data/batches';
import type { Dataset } from '../data/dataset';
import { encodeCheckpoint } from '../artifacts/checkpoint';
import { LAZY_RESET_GRAD, gradBufferName, splitContiguous } from '../artifacts/ort-artifacts';
import { gradientOutputName } from '../artifacts/ort-build';
import { decodeModel } from '../onnx/proto';
import { stateName } from '../optim/optimizers';
import { OrtTrainingBackend, OrtTrainingError } from '../runtime/ort-training';
import { stateToCheckpoint, TrainState } from './state';
import type { StepResult, TrainBackend } from './trainer';

export interface OrtBackendModels {
  trainingModel: Uint8Array;
  evalModel: Uint8Array;
  optimizerModel: Uint8Array;
  /** Where they came from, for messages. */
  sources?: string[];
  /**
   * The lr the optimizer model applies at each step (index = step − 1). step() refuses an lr
   * from the trainer that differs from it, so a schedule can never silently not take effect.
   */
  lrs?: Float64Array | number;
}

interface Layout {
  name: string;
  shape: number[];
  trainable: boolean;
}

/** Parameters in the training graph's input order (the runtime's flat order), with trainable flags. */
function layoutOf(trainingModel: Uint8Array, state: TrainState): Layout[] {
  const inputs = (decodeModel(trainingModel).graph?.input ?? []).map((v) => v.name!);
  const set = new Set(inputs);
  const out: Layout[] = [];
  for (const n of inputs) {
    const p = state.params.get(n);
    if (p) out.push({ name: n, shape: p.shape, trainable: set.has(gradBufferName(n)) });
  }
  const missing = [...state.params.keys()].filter((n) => !set.has(n));
  if (missing.length) throw new OrtTrainingError(`the training model has no input for parameters ${missing.join(', ')}`);
  if (!set.has(LAZY_RESET_GRAD)) throw new OrtTrainingError(`the training model has no ${LAZY_RESET_GRAD} input: it is not an ORT training model`);
  return out;
}

export class OrtTrainBackend implements TrainBackend {
  readonly name = 'ort-training';
  private dirty = false;

  private constructor(
    private readonly cfg: RunConfig,
    private readonly state: TrainState,
    private readonly be: OrtTrainingBackend,
    private readonly layout: Layout[],
    private readonly lrs: Float64Array | number | undefined,
    private readonly gradOutputs: boolean,
    private readonly evalBatch: number,
  ) {}

  /**
   * Creates the TrainingSession from the models and a checkpoint made from `state` (params,
   * moments, step; frozen params as frozen_params), so a fresh run and a resumed one start alike.
   */
  static async create(cfg: RunConfig, state: TrainState, m: OrtBackendModels, o: { evalBatch?: number } = {}): Promise<OrtTrainBackend> {
    const layout = layoutOf(m.trainingModel, state);
    const frozen = new Set(layout.filter((p) => !p.trainable).map((p) => p.name));
    const declared = state.frozen ?? new Set<string>();
    const diff = [...frozen].filter((n) => !declared.has(n)).concat([...declared].filter((n) => !frozen.has(n)));
    if (diff.length) {
      throw new OrtTrainingError(
        `the training model freezes [${[...frozen].join(', ')}] but the checkpoint freezes [${[...declared].join(', ')}]; rebuild the artifacts with the same --freeze`,
      );
    }
    const outNames = new Set((decodeModel(m.trainingModel).graph?.output ?? []).map((v) => v.name!));
    const trainable = layout.filter((p) => p.trainable);
    const gradOutputs = trainable.every((p) => outNames.has(gradientOutputName(p.name)));
    if (state.optimizer === 'adamw' && !gradOutputs) {
      throw new OrtTrainingError('the training model does not output the parameter gradients (P.gradient) that the AdamW moments are tracked from; rebuild it with ljtrain build-graph --format ort');
    }
    const ckpt = encodeCheckpoint(stateToCheckpoint(state, cfg));
    const be = await OrtTrainingBackend.create({
      trainingModel: m.trainingModel,
      evalModel: m.evalModel,
      optimizerModel: m.optimizerModel,
      checkpoint: ckpt,
      sources: m.sources,
    });
    return new OrtTrainBackend(cfg, state, be, layout, m.lrs, gradOutputs, o.evalBatch ?? 500);
  }

  /** The underlying session wrapper (tests, tools). */
  get session(): OrtTrainingBackend {
    return this.be;
  }

  async step(x: Float32Array, y: BigInt64Array, dims: number[], lr: number): Promise<StepResult> {
    const k = this.state.step; // this is optimizer step k + 1
    if (this.lrs !== undefined) {
      const want = typeof this.lrs === 'number' ? this.lrs : this.lrs[Math.min(k, this.lrs.length - 1)];
      if (Math.fround(want) !== Math.fround(lr)) {
        throw new OrtTrainingError(
          `step ${k + 1}: the trainer's learning rate ${lr} is not the ${want} built into the optimizer model; the model's lr table does not fit this run (rebuild it for the run's length)`,
        );
      }
    }
    let out: Awaited<ReturnType<OrtTrainingBackend['trainStep']>>;
    try {
      await this.be.lazyResetGrad();
      out = await this.be.trainStep({
        input: { dtype: 'float32', data: x, dims },
        labels: { dtype: 'int64', data: y, dims: [dims[0]] },
      });
      this.dirty = true;
      await this.be.optimizerStep();
    } catch (e) {
      if (e instanceof OrtTrainingError) throw new OrtTrainingError(`ort-training step ${k + 1}: ${e.message}`, e.raw);
      throw e;
    }
    if (this.state.optimizer === 'adamw') this.trackMoments(out);
    const f = (n: string) => {
      const t = out[n];
      if (!t) throw new OrtTrainingError(`running train step ${k + 1} failed: the training model has no output ${n}`);
      return (t.data as Float32Array)[0];
    };
    return { loss: f('loss'), ce: f('ce_loss'), lj: f('lj_loss'), correct: f('correct') };
  }

  /** m, v of every trainable parameter, updated as ORT's AdamWOptimizer kernel does (float32, same order). */
  private trackMoments(out: Record<string, { data: unknown }>): void {
    const t = this.cfg.train;
    const a = Math.fround(t.beta1), oma = Math.fround(1 - a);
    const b = Math.fround(t.beta2), omb = Math.fround(1 - b);
    const fr = Math.fround;
    for (const p of this.layout) {
      if (!p.trainable) continue;
      const g = out[gradientOutputName(p.name)]?.data as Float32Array | undefined;
      if (!g) throw new OrtTrainingError(`the training step did not return ${gradientOutputName(p.name)}`);
      const m = this.state.opt.get(stateName('m', p.name))!.data;
      const v = this.state.opt.get(stateName('v', p.name))!.data;
      if (g.length !== m.length) throw new OrtTrainingError(`${gradientOutputName(p.name)} has ${g.length} values, the parameter ${m.length}`);
      for (let i = 0; i < g.length; i++) {
        const gi = g[i];
        m[i] = fr(a * m[i]) + fr(oma * gi);
        v[i] = fr(b * v[i]) + fr(fr(omb * gi) * gi);
      }
    }
  }

  async evaluate(ds: Dataset): Promise<{ loss: number; acc: number }> {
    let loss = 0, correct = 0;
    for (const bt of epochBatches(ds, { batchSize: this.evalBatch })) {
      const out = await this.be.evalStep({
        input: { dtype: 'float32', data: bt.x, dims: [bt.size, ds.channels, ds.height, ds.width] },
        labels: { dtype: 'int64', data: bt.y, dims: [bt.size] },
      });
      loss += (out.ce_loss.data as Float32Array)[0] * bt.size;
      correct += (out.correct.data as Float32Array)[0];
    }
    return { loss: loss / ds.n, acc: correct / ds.n };
  }

  /** Reads the parameters back from the runtime into the state (moments are kept there already). */
  async sync(): Promise<void> {
    if (!this.dirty) return;
    const flat = await this.be.getContiguousParameters(false);
    for (const t of splitContiguous(flat, this.layout)) this.state.params.get(t.name)!.data = t.data;
    this.dirty = false;
  }

  async release(): Promise<void> {
    await this.be.release();
  }

  /** Whether the training model outputs gradients (AdamW moment tracking). */
  get tracksMoments(): boolean {
    return this.gradOutputs && this.state.optimizer === 'adamw';
  }
}
