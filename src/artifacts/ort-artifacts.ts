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

export interface OptimizerModelOptions {
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
  if (new Set(outputs.map((v) => v.name)).size !== outputs.length) fail('duplicate output names');
  for (const v of outputs) if (reserved(v.name)) fail(`output name ${v.name} is reserved for ORT's gradient plumbing (the runtime would hide it)`);

  const layout: ParamLayout[] = b.params.map((p) => ({ name: p.value.name, shape: staticShape(p.value), trainable: byName.get(p.value.name)!.trainable }));
  const userInputs = b.inputs.map((v) => v.name);
  const msOpset = { [MS_DOMAIN]: 1 };

  // Eval model: forward + loss as built so far, parameters as inputs.
  const evalModel = b.toModel({ name: 'eval', paramsAsInputs: true, docString: 'ljtrain ORT eval model' });
  evalModel.graph!.output = outputs.map(valueInfo);

  // Training model: gradients, then one accumulator per trainable parameter.
  const trainable = b.params.filter((p) => byName.get(p.value.name)!.trainable);
  if (trainable.length === 0) fail('no trainable parameters');
  const grads = backward(b, loss, trainable.map((p) => p.value));
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
  g.output = [...outputs, ...accOuts].map(valueInfo);

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
        momentums: ADAMW_MOMENTUM_NAMES.map((m) => ({ name: m, dims: staticShape(p.value), data: new Float32Array(p.init.length) })),
      })),
    };
  }
  return { trainingModel, evalModel, optimizerModel, checkpoint, params: layout, inputs: userInputs, outputs: outputs.map((v) => v.name) };
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
      inits.push(makeTensorProto('lr_scale', 'float32', [1], Float32Array.of(lr / runtimeLr)));
      node('Mul', ['learning_rate', 'lr_scale'], 'lr_effective');
      lrName = 'lr_effective';
    }
  } else {
    inits.push(makeTensorProto('lr_table', 'float32', [lrs.length], Float32Array.from(lrs, (x) => x / runtimeLr)));
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
  // Attributes in sorted order (same recipe, same bytes).
  node('AdamWOptimizer', [lrName, 'step', 'params', 'gradients', 'first_order_moments', 'second_order_moments'], 'updated_flag', MS_DOMAIN, [
    { name: 'adam_mode', type: A.INT, i: 0 },
    { name: 'alpha', type: A.FLOAT, f: beta1 },
    { name: 'beta', type: A.FLOAT, f: beta2 },
    { name: 'correct_bias', type: A.INT, i: a.correctBias === false ? 0 : 1 },
    { name: 'epsilon', type: A.FLOAT, f: epsilon },
    { name: 'weight_decay', type: A.FLOAT, f: weightDecay },
  ]);

  const graph = onnx.GraphProto.create({
    name: 'optimizer',
    node: nodes,
    initializer: inits,
    input: [tensorInfo('learning_rate', F, [1]), tensorInfo('step', I64, [1]), ...OPTIMIZER_INPUTS.slice(2).map(seqInfo)],
    output: [tensorInfo('updated_flag', onnx.TensorProto.DataType.BOOL, [1])],
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
    docString: 'ljtrain ORT optimizer model (AdamW, torch semantics)',
  });
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
