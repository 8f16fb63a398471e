/**
 * ONNX Runtime training artifacts (training_model.onnx, eval_model.onnx, optimizer_model.onnx,
 * checkpoint) built from a GraphBuilder that holds forward + loss, in the layout recorded in
 * ../shared/ORT-TRAINING-FORMAT.md and checked against onnxruntime-web 1.19.2's training build.
 *
 *   const b = new GraphBuilder({ seed: 1 });
 *   ... forward, loss ...
 *   const art = buildOrtArtifacts(b, loss, { adamw: { weightDecay: 0.01 }, lr: schedule });
 *   writeOrtArtifacts('out/ort', art);
 *
 * Training model: parameters are graph inputs named as in the checkpoint; gradients come from
 * src/grad/backward.ts (plain ai.onnx ops) and are accumulated per trainable parameter P by
 * com.microsoft InPlaceAccumulatorV2(P_grad.accumulation.buffer, P_grad, lazy_reset_grad) ->
 * P_grad.accumulation.out (bool[1]). Eval model: forward + loss with the same output names and
 * positions. Optimizer model: com.microsoft AdamWOptimizer (adam_mode 0 = torch.optim.AdamW), its
 * learning rate taken from the graph (constant or per-step table), because the web runtime always
 * feeds its own fixed learning_rate (0.001) and has no way to change it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { GraphBuilder, Param } from '../graph/builder';
import { valueInfo } from '../graph/builder';
import { GraphBuildError, Value, shapeStr } from '../graph/types';
import { backward } from '../grad/backward';
import { encodeModel, makeTensorProto, onnx } from '../onnx/proto';
import { ADAMW_MOMENTUM_NAMES, Checkpoint, CheckpointProperties, NamedTensor, emptyProperties, encodeCheckpoint, writeFileAtomic } from './checkpoint';

export const MS_DOMAIN = 'com.microsoft';
/** The learning rate the onnxruntime-web 1.19 training runtime feeds to the optimizer model (ORT's default). */
export const ORT_WEB_RUNTIME_LR = 0.001;
export const LAZY_RESET_GRAD = 'lazy_reset_grad';
export const gradBufferName = (p: string): string => `${p}_grad.accumulation.buffer`;
export const gradOutName = (p: string): string => `${p}_grad.accumulation.out`;
export const gradName = (p: string): string => `${p}_grad`;
/** Input names of the optimizer model, in the order ORT 1.19 requires. */
export const OPTIMIZER_INPUTS = ['learning_rate', 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'] as const;
export const ARTIFACT_FILES = {
  trainingModel: 'training_model.onnx',
  evalModel: 'eval_model.onnx',
  optimizerModel: 'optimizer_model.onnx',
  checkpoint: 'checkpoint',
} as const;

/** AdamW hyper-parameters, torch.optim.AdamW semantics (AdamWOptimizer adam_mode 0). */
export interface AdamWOptions {
  beta1?: number;
  beta2?: number;
  epsilon?: number;
  weightDecay?: number;
  /** Bias correction of both moments (torch always applies it); default true. */
  correctBias?: boolean;
}

/** The optimizer algorithms the ORT training runtime knows (one node, one group). */
export type OrtOptimizerKind = 'adamw' | 'sgd';

export interface OptimizerModelOptions {
  /**
   * 'adamw' (default): com.microsoft AdamWOptimizer, torch.optim.AdamW semantics.
   * 'sgd': com.microsoft SGDOptimizerV2, which is p ← p − lr·g and nothing else (no momentum, no
   * weight decay, no state; torch.optim.SGD with momentum 0 and weight_decay 0). Weight decay can be
   * folded into the training model's gradient (g + wd·p, torch SGD's coupled decay); momentum cannot.
   */
  optimizer?: OrtOptimizerKind;
  adamw?: AdamWOptions;
  /**
   * The learning rate the optimizer applies: a constant, or a table indexed by optimizer step − 1
   * (step 1 uses lr[0]; steps past the end use the last entry). Default 0.001.
   */
  lr?: number | Float32Array | number[];
  /**
   * The learning_rate the runtime feeds (onnxruntime-web 1.19: always 0.001). The graph scales the fed
   * value by lr / runtimeLearningRate, so that runtime applies exactly `lr`; a runtime that can set
   * its rate (Python onnxruntime-training) scales the whole schedule by rate / runtimeLearningRate.
   */
  runtimeLearningRate?: number;
  opset?: number;
  irVersion?: number;
}

export interface OrtArtifactOptions extends OptimizerModelOptions {
  /**
   * Parameters with trainable flags; defaults to b.params. Must cover every parameter of the builder
   * (each becomes a graph input that the runtime can only fill from the checkpoint).
   */
  params?: Param[];
  /**
   * Training/eval outputs, in order. Default: b.outputs if they include the loss, else the loss
   * followed by b.outputs.
   */
  outputs?: Value[];
  /** Properties stored in the initial checkpoint. */
  properties?: CheckpointProperties;
  /** Store zero AdamW moments and step 0 in the initial checkpoint (default true). */
  optimizerState?: boolean;
  /**
   * Gradients of the loss w.r.t. the trainable parameters (same order), already built on `b`
   * (e.g. by buildGradientCore). Without it, buildOrtArtifacts runs backward() itself.
   */
  grads?: (Value | null)[];
  /**
   * The eval model to write. Required with `grads` (the builder then already holds the backward
   * pass); its outputs must be the first outputs of the training model, in the same order
   * (onnxruntime-web 1.19 labels eval results with the training output names, by position).
   */
  evalModel?: onnx.ModelProto;
  /**
   * More training-model outputs, after `outputs` and before the accumulator flags (e.g. each
   * parameter's gradient under a name the runtime does not hide, such as `P.gradient`).
   */
  extraTrainingOutputs?: Value[];
}

/** One parameter in the flat order the runtime uses (getContiguousParameters / loadParametersBuffer). */
export interface ParamLayout {
  name: string;
  shape: number[];
  trainable: boolean;
}

export interface OrtArtifacts {
  trainingModel: onnx.ModelProto;
  evalModel: onnx.ModelProto;
  optimizerModel: onnx.ModelProto;
  checkpoint: Checkpoint;
  /** All parameters in training-graph input order (the runtime's flat buffer order). */
  params: ParamLayout[];
  /** User inputs of the training and eval models (what trainStep / evalStep must be fed). */
  inputs: string[];
  /** Output names of the training and eval models. */
  outputs: string[];
}

function fail(msg: string): never {
  throw new GraphBuildError(`ORT artifacts: ${msg}`);
}

function staticShape(v: Value): number[] {
  if (v.shape.some((d) => typeof d !== 'number')) fail(`parameter ${v.name} has a symbolic shape ${shapeStr(v.shape)}`);
  return v.shape as number[];
}

/**
 * Builds the three ModelProtos and the initial checkpoint. Appends the backward pass to `b`
 * (the eval model is taken before that), so call it once per builder, after forward + loss.
 */
export function buildOrtArtifacts(b: GraphBuilder, loss: Value, opts: OrtArtifactOptions = {}): OrtArtifacts {
  const params = opts.params ?? b.params;
  const byName = new Map(params.map((p) => [p.value.name, p]));
  for (const p of b.params) if (!byName.has(p.value.name)) fail(`builder parameter ${p.value.name} is missing from the params list`);
  for (const p of params) if (!b.params.includes(p)) fail(`parameter ${p.value.name} does not belong to this builder`);
  if (loss.dtype !== 'float32') fail(`loss ${loss.name} is ${loss.dtype}; ORT training needs a float32 loss`);
  if (loss.shape.some((d) => d !== 1)) fail(`loss ${loss.name} ${shapeStr(loss.shape)} is not a scalar`);
  const reserved = (n: string) => n === LAZY_RESET_GRAD || /_grad(\.accumulation\.(buffer|out))?$/.test(n);
  for (const v of b.inputs) if (reserved(v.name)) fail(`input name ${v.name} is reserved for ORT's gradient plumbing`);

  const outputs = opts.outputs ?? (b.outputs.includes(loss) ? [...b.outputs] : [loss, ...b.outputs]);
  if (!outputs.includes(loss)) fail(`the outputs do not include the loss ${loss.name}`);
  const extra = opts.extraTrainingOutputs ?? [];
  const allOut = [...outputs, ...extra];
  if (new Set(allOut.map((v) => v.name)).size !== allOut.length) fail('duplicate output names');
  for (const v of allOut) if (reserved(v.name)) fail(`output name ${v.name} is reserved for ORT's gradient plumbing (the runtime would hide it)`);
  if (opts.grads && !opts.evalModel) fail('precomputed grads need an evalModel (the builder already holds the backward pass)');

  const layout: ParamLayout[] = b.params.map((p) => ({ name: p.value.name, shape: staticShape(p.value), trainable: byName.get(p.value.name)!.trainable }));
  const userInputs = b.inputs.map((v) => v.name);
  const msOpset = { [MS_DOMAIN]: 1 };

  // Eval model: forward + loss as built so far, parameters as inputs.
  let evalModel: onnx.ModelProto;
  if (opts.evalModel) {
    evalModel = opts.evalModel;
    const names = (evalModel.graph?.output ?? []).map((o) => o.name);
    const want = allOut.map((v) => v.name);
    if (names.length === 0 || names.some((n, i) => n !== want[i])) {
      fail(`the eval model's outputs [${names.join(', ')}] must be the first outputs of the training model [${want.join(', ')}], in order`);
    }
  } else {
    evalModel = b.toModel({ name: 'eval', paramsAsInputs: true, docString: 'ljtrain ORT eval model' });
    evalModel.graph!.output = outputs.map(valueInfo);
  }

  // Training model: gradients, then one accumulator per trainable parameter.
  const trainable = b.params.filter((p) => byName.get(p.value.name)!.trainable);
  if (trainable.length === 0) fail('no trainable parameters');
  if (opts.grads && opts.grads.length !== trainable.length) fail(`${opts.grads.length} gradients given for ${trainable.length} trainable parameters`);
  const grads = opts.grads ?? backward(b, loss, trainable.map((p) => p.value));
  const lazy = b.input(LAZY_RESET_GRAD, 'bool', [1]);
  const accOuts: Value[] = [];
  const bufInputs: Value[] = [];
  trainable.forEach((p, i) => {
    const name = p.value.name;
    const shape = staticShape(p.value);
    let g = grads[i];
    // A parameter the loss does not reach gets a zero gradient (ORT still wants its accumulator).
    if (!g) g = b.expand(b.scalar(0), b.ints(shape), shape);
    const gNamed = b.node('Identity', [g], {}, { shapes: [shape], dtypes: ['float32'] }, gradName(name))[0];
    const buf = b.input(gradBufferName(name), 'float32', shape);
    bufInputs.push(buf);
    accOuts.push(b.node('InPlaceAccumulatorV2', [buf, gNamed, lazy], {}, { domain: MS_DOMAIN, shapes: [[1]], dtypes: ['bool'] }, gradOutName(name))[0]);
  });
  const trainingModel = b.toModel({ name: 'training', paramsAsInputs: true, extraOpsets: msOpset, docString: 'ljtrain ORT training model' });
  const g = trainingModel.graph!;
  // Input order: user inputs, parameters, gradient buffers, lazy_reset_grad (as onnxblock writes them).
  const vi = new Map((g.input ?? []).map((x) => [x.name!, x]));
  g.input = [...userInputs, ...layout.map((p) => p.name), ...bufInputs.map((v) => v.name), LAZY_RESET_GRAD].map((n) => vi.get(n)!);
  g.output = [...allOut, ...accOuts].map(valueInfo);

  const optimizerModel = buildOptimizerModel({ ...opts, opset: opts.opset ?? b.opset, irVersion: opts.irVersion ?? b.irVersion });

  const tensorOf = (p: Param): NamedTensor => ({ name: p.value.name, dims: staticShape(p.value), data: Float32Array.from(p.init) });
  const checkpoint: Checkpoint = {
    requiresGradParams: trainable.map(tensorOf),
    frozenParams: b.params.filter((p) => !byName.get(p.value.name)!.trainable).map(tensorOf),
    properties: opts.properties ?? emptyProperties(),
  };
  if (opts.optimizerState !== false) {
    checkpoint.optimizer = {
      step: 0,
      initialLearningRate: lrAtStep(opts.lr, 1),
      states: trainable.map((p) => ({
        paramName: p.value.name,
        momentums: momentumNames(opts.optimizer).map((m) => ({ name: m, dims: staticShape(p.value), data: new Float32Array(p.init.length) })),
      })),
    };
  }
  return { trainingModel, evalModel, optimizerModel, checkpoint, params: layout, inputs: userInputs, outputs: outputs.map((v) => v.name) };
}

/**
 * Momentum names ORT keeps per trainable parameter: AdamW momentum0 (m) and momentum1 (v); SGD
 * momentum0 (allocated by the runtime, unused by SGDOptimizerV2).
 */
export function momentumNames(kind: OrtOptimizerKind = 'adamw'): readonly string[] {
  return kind === 'sgd' ? ADAMW_MOMENTUM_NAMES.slice(0, 1) : ADAMW_MOMENTUM_NAMES;
}

/**
 * The float32 factor f closest to lr / runtimeLr such that float32(float32(runtimeLr) · f) is
 * float32(lr) whenever such an f exists (for runtimeLr 0.001 about 98% of learning rates; the
 * others come out 1 ulp away): the runtime then applies bit for bit the float32 learning rate a
 * host-fed graph would get.
 */
export function lrScale(lr: number, runtimeLr: number): number {
  const want = Math.fround(lr);
  const r = Math.fround(runtimeLr);
  const f0 = Math.fround(want / r);
  if (Math.fround(r * f0) === want || lr === 0) return f0;
  const buf = new Float32Array(1);
  const bits = new Int32Array(buf.buffer);
  let best = f0;
  let bestErr = Math.abs(Math.fround(r * f0) - want);
  for (let d = 1; d <= 8; d++) {
    for (const s of [1, -1]) {
      buf[0] = f0;
      bits[0] += s * d;
      const err = Math.abs(Math.fround(r * buf[0]) - want);
      if (err === 0) return buf[0];
      if (err < bestErr) {
        best = buf[0];
        bestErr = err;
      }
    }
  }
  return best;
}

/** The learning rate the optimizer model applies at optimizer step `step` (1-based). */
export function lrAtStep(lr: OptimizerModelOptions['lr'], step: number): number {
  if (lr === undefined) return ORT_WEB_RUNTIME_LR;
  if (typeof lr === 'number') return lr;
  return lr[Math.min(Math.max(step - 1, 0), lr.length - 1)];
}

function seqInfo(name: string): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      sequenceType: onnx.TypeProto.Sequence.create({
        elemType: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: onnx.TensorProto.DataType.FLOAT }) }),
      }),
    }),
  });
}

function tensorInfo(name: string, elemType: number, dims: number[]): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({ elemType, shape: onnx.TensorShapeProto.create({ dim: dims.map((d) => ({ dimValue: d })) }) }),
    }),
  });
}

const A = onnx.AttributeProto.AttributeType;

/**
 * The optimizer model: inputs exactly learning_rate float[1], step int64[1], params, gradients,
 * first_order_moments, second_order_moments (seq(tensor(float))); one com.microsoft AdamWOptimizer
 * node whose bool updated_flag is the only output. The learning rate it receives is
 *   learning_rate · lr / runtimeLearningRate                  (constant lr), or
 *   learning_rate · table[clamp(step − 1, 0, n − 1)]          (table = lr[] / runtimeLearningRate),
 * so with the web runtime (learning_rate fixed at 0.001) the update uses exactly lr / lr[step − 1].
 */
export function buildOptimizerModel(opts: OptimizerModelOptions = {}): onnx.ModelProto {
  const kind = opts.optimizer ?? 'adamw';
  if (kind !== 'adamw' && kind !== 'sgd') fail(`unknown optimizer '${String(kind)}' (ORT training has adamw and sgd)`);
  const a = opts.adamw ?? {};
  const beta1 = a.beta1 ?? 0.9;
  const beta2 = a.beta2 ?? 0.999;
  const epsilon = a.epsilon ?? 1e-8;
  const weightDecay = a.weightDecay ?? 0.01;
  const bad = (k: string, v: unknown, why: string) => fail(`invalid AdamW option ${k}=${String(v)}: ${why}`);
  if (!(beta1 >= 0 && beta1 < 1)) bad('beta1', beta1, 'must be in [0, 1)');
  if (!(beta2 >= 0 && beta2 < 1)) bad('beta2', beta2, 'must be in [0, 1)');
  if (!(epsilon > 0)) bad('epsilon', epsilon, 'must be > 0');
  if (!(weightDecay >= 0)) bad('weightDecay', weightDecay, 'must be >= 0');
  const runtimeLr = opts.runtimeLearningRate ?? ORT_WEB_RUNTIME_LR;
  if (!(runtimeLr > 0) || !Number.isFinite(runtimeLr)) bad('runtimeLearningRate', runtimeLr, 'must be a finite number > 0');
  const lr = opts.lr ?? ORT_WEB_RUNTIME_LR;
  const lrs = typeof lr === 'number' ? [lr] : Array.from(lr);
  if (lrs.length === 0) bad('lr', '[]', 'a schedule needs at least one entry');
  for (const x of lrs) if (!(x >= 0) || !Number.isFinite(x)) bad('lr', x, 'learning rates must be finite and >= 0');

  const F = onnx.TensorProto.DataType.FLOAT;
  const I64 = onnx.TensorProto.DataType.INT64;
  const nodes: onnx.INodeProto[] = [];
  const inits: onnx.ITensorProto[] = [];
  const node = (opType: string, inputs: string[], output: string, domain = '', attribute: onnx.IAttributeProto[] = []) =>
    nodes.push(onnx.NodeProto.create({ opType, domain, name: `${opType}_${nodes.length}`, input: inputs, output: [output], attribute }));

  let lrName = 'learning_rate';
  if (typeof lr === 'number') {
    if (lr !== runtimeLr) {
      inits.push(makeTensorProto('lr_scale', 'float32', [1], Float32Array.of(lrScale(lr, runtimeLr))));
      node('Mul', ['learning_rate', 'lr_scale'], 'lr_effective');
      lrName = 'lr_effective';
    }
  } else {
    inits.push(makeTensorProto('lr_table', 'float32', [lrs.length], Float32Array.from(lrs, (x) => lrScale(x, runtimeLr))));
    inits.push(makeTensorProto('one_i64', 'int64', [1], BigInt64Array.of(1n)));
    inits.push(makeTensorProto('zero_i64', 'int64', [1], BigInt64Array.of(0n)));
    inits.push(makeTensorProto('last_i64', 'int64', [1], BigInt64Array.of(BigInt(lrs.length - 1))));
    node('Sub', ['step', 'one_i64'], 'lr_index_raw');
    node('Max', ['lr_index_raw', 'zero_i64'], 'lr_index_lo');
    node('Min', ['lr_index_lo', 'last_i64'], 'lr_index');
    node('Gather', ['lr_table', 'lr_index'], 'lr_scale', '', [{ name: 'axis', type: A.INT, i: 0 }]);
    node('Mul', ['learning_rate', 'lr_scale'], 'lr_effective');
    lrName = 'lr_effective';
  }
  const BOOL = onnx.TensorProto.DataType.BOOL;
  if (kind === 'sgd') {
    // SGDOptimizerV2(lr, params, gradients) -> update_completed; the runtime still wants the
    // AdamW-style input list up to first_order_moments (its momentum0 state, unused here), and
    // the output's shape left undeclared.
    node('SGDOptimizerV2', [lrName, 'params', 'gradients'], 'update_completed', MS_DOMAIN);
    const out = onnx.ValueInfoProto.create({ name: 'update_completed', type: onnx.TypeProto.create({ tensorType: onnx.TypeProto.Tensor.create({ elemType: BOOL }) }) });
    return model(OPTIMIZER_INPUTS.slice(2, 5), out, 'ljtrain ORT optimizer model (SGD: p -= lr * g; no momentum, no weight decay)');
  }
  // Attributes in sorted order (same recipe, same bytes).
  node('AdamWOptimizer', [lrName, 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'], 'updated_flag', MS_DOMAIN, [
    { name: 'adam_mode', type: A.INT, i: 0 },
    { name: 'alpha', type: A.FLOAT, f: beta1 },
    { name: 'beta', type: A.FLOAT, f: beta2 },
    { name: 'correct_bias', type: A.INT, i: a.correctBias === false ? 0 : 1 },
    { name: 'epsilon', type: A.FLOAT, f: epsilon },
    { name: 'weight_decay', type: A.FLOAT, f: weightDecay },
  ]);

  return model(OPTIMIZER_INPUTS.slice(2), tensorInfo('updated_flag', BOOL, [1]), 'ljtrain ORT optimizer model (AdamW, torch semantics)');

  /** The optimizer ModelProto around the nodes built above (lr, step, then the given sequences). */
  function model(sequences: readonly string[], output: onnx.IValueInfoProto, docString: string): onnx.ModelProto {
    const graph = onnx.GraphProto.create({
      name: 'optimizer',
      node: nodes,
      initializer: inits,
      input: [tensorInfo('learning_rate', F, [1]), tensorInfo('step', I64, [1]), ...sequences.map(seqInfo)],
      output: [output],
    });
    return onnx.ModelProto.create({
      irVersion: opts.irVersion ?? 8,
      opsetImport: [
        onnx.OperatorSetIdProto.create({ domain: '', version: opts.opset ?? 17 }),
        onnx.OperatorSetIdProto.create({ domain: MS_DOMAIN, version: 1 }),
      ],
      producerName: 'ljtrain',
      producerVersion: '0.1.0',
      graph,
      docString,
    });
  }
}

/** Serialised artifacts, ready for OrtTrainingBackend.create or for writing out. */
export interface OrtArtifactBytes {
  trainingModel: Uint8Array;
  evalModel: Uint8Array;
  optimizerModel: Uint8Array;
  checkpoint: Uint8Array;
}

export function encodeOrtArtifacts(a: Pick<OrtArtifacts, 'trainingModel' | 'evalModel' | 'optimizerModel' | 'checkpoint'>): OrtArtifactBytes {
  return {
    trainingModel: encodeModel(a.trainingModel),
    evalModel: encodeModel(a.evalModel),
    optimizerModel: encodeModel(a.optimizerModel),
    checkpoint: encodeCheckpoint(a.checkpoint),
  };
}

/** Writes training_model.onnx, eval_model.onnx, optimizer_model.onnx and checkpoint into `dir` (each atomically). */
export function writeOrtArtifacts(dir: string, a: Pick<OrtArtifacts, 'trainingModel' | 'evalModel' | 'optimizerModel' | 'checkpoint'>): Record<keyof typeof ARTIFACT_FILES, string> {
  const bytes = encodeOrtArtifacts(a);
  fs.mkdirSync(dir, { recursive: true });
  const out = {} as Record<keyof typeof ARTIFACT_FILES, string>;
  for (const k of Object.keys(ARTIFACT_FILES) as (keyof typeof ARTIFACT_FILES)[]) {
    const file = path.join(dir, ARTIFACT_FILES[k]);
    writeFileAtomic(file, bytes[k], k === 'checkpoint' ? 'checkpoint' : 'ONNX model');
    out[k] = file;
  }
  return out;
}

/** Reads the four artifact files from `dir` as bytes (for OrtTrainingBackend.create). */
export function readOrtArtifacts(dir: string): OrtArtifactBytes & { files: Record<keyof typeof ARTIFACT_FILES, string> } {
  const files = {} as Record<keyof typeof ARTIFACT_FILES, string>;
  const bytes = {} as OrtArtifactBytes;
  for (const k of Object.keys(ARTIFACT_FILES) as (keyof typeof ARTIFACT_FILES)[]) {
    const file = path.join(dir, ARTIFACT_FILES[k]);
    try {
      bytes[k] = fs.readFileSync(file);
    } catch (e) {
      throw new Error(`cannot read ORT artifact ${file}: ${(e as Error).message}`);
    }
    files[k] = file;
  }
  return { ...bytes, files };
}

/** Splits a flat parameter buffer (runtime order) into named tensors. */
export function splitContiguous(flat: Float32Array, layout: { name: string; shape: number[] }[]): NamedTensor[] {
  const total = layout.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  if (flat.length !== total) throw new Error(`flat parameter buffer has ${flat.length} values, the layout needs ${total}`);
  let off = 0;
  return layout.map((p) => {
    const n = p.shape.reduce((a, b) => a * b, 1);
    const t = { name: p.name, dims: [...p.shape], data: flat.slice(off, off + n) };
    off += n;
    return t;
  });
}

/** Concatenates named tensors into the runtime's flat order given by `layout`. */
export function joinContiguous(tensors: NamedTensor[], layout: { name: string; shape: number[] }[]): Float32Array {
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const total = layout.reduce((s, p) => s + p.shape.reduce((a, b) => a * b, 1), 0);
  const out = new Float32Array(total);
  let off = 0;
  for (const p of layout) {
    const t = byName.get(p.name);
    const n = p.shape.reduce((a, b) => a * b, 1);
    if (!t) throw new Error(`no tensor for parameter ${p.name}`);
    if (t.data.length !== n) throw new Error(`tensor ${p.name} has ${t.data.length} values, shape [${p.shape.join(',')}] needs ${n}`);
    out.set(t.data, off);
    off += n;
  }
  return out;
}
