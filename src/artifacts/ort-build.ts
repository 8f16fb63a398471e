/**
 * ONNX Runtime training artifacts of a run config (build-graph --format ort, train --backend
 * ort-training), built from the same gradient core as the native train step
 * (buildGradientCore: forward + CE + ε·LJ + our backward), and the way back from them to an
 * inference model.
 *
 * Training model outputs, in order: loss, ce_loss, lj_loss, correct, logits, then (AdamW) each
 * trainable parameter's gradient as `P.gradient` (a name the runtime does not hide), then the
 * accumulator flags. The eval model outputs the first five, so onnxruntime-web's eval results (which
 * it labels with the training output names, by position) come out right, and
 * export_model_for_inferencing(['logits']) works in onnxruntime-training.
 *
 * The `P.gradient` outputs make the AdamW moments observable: the web API cannot read them back,
 * so the ORT backend (src/train/ort-backend.ts) repeats the optimizer's moment updates in float32
 * and writes params + moments + step into the run's checkpoints.
 */
import type { RunConfig, TrainConfig } from '../config';
import type { Param } from '../graph/builder';
import { GraphBuildError, Value } from '../graph/types';
import { onnx } from '../onnx/proto';
import { lrAt } from '../optim/schedule';
import { UserError } from '../runtime/session';
import { TrainState, initialState, paramsFromBuilder, stateToCheckpoint } from '../train/state';
import { Checkpoint, CheckpointError, checkParamsMatch } from './checkpoint';
import { buildGradientCore } from './graphs';
import { ORT_WEB_RUNTIME_LR, OrtArtifacts, OrtOptimizerKind, buildOptimizerModel, buildOrtArtifacts, lrScale } from './ort-artifacts';

/** Outputs of the eval model, and the first outputs of the training model, in this order. */
export const ORT_OUTPUTS = ['loss', 'ce_loss', 'lj_loss', 'correct', 'logits'] as const;
/** Training-model output carrying d loss / d P (AdamW builds; read by the ORT backend). */
export const gradientOutputName = (p: string): string => `${p}.gradient`;

/** Checkpoint properties written next to ljtrain's own (state.ts) ones. */
export const ORT_PROPS = {
  /** JSON: { optimizer, gradientOutputs, sgdWeightDecay } — what the training model was built for. */
  trainingModel: 'ljtrain.ort.training_model',
  /** JSON list of frozen parameter names. */
  frozen: 'ljtrain.ort.frozen',
  /** The learning rate onnxruntime-web feeds (the optimizer model scales it). */
  runtimeLr: 'ljtrain.ort.runtime_lr',
  /** JSON: how the optimizer model maps the fed rate to the applied one. */
  lr: 'ljtrain.ort.lr',
} as const;

/** What a training model was built for; a run rebuilds its training/eval models when this differs. */
export interface TrainingModelKey {
  optimizer: OrtOptimizerKind;
  gradientOutputs: boolean;
  /** SGD only: weight decay folded into the gradient (g + wd·p); 0 for AdamW (decay is in the optimizer). */
  sgdWeightDecay: number;
}

export function trainingModelKey(t: TrainConfig): TrainingModelKey {
  return { optimizer: t.optimizer, gradientOutputs: t.optimizer === 'adamw', sgdWeightDecay: t.optimizer === 'sgd' ? t.weightDecay : 0 };
}

export function sameKey(a: TrainingModelKey, b: TrainingModelKey): boolean {
  return a.optimizer === b.optimizer && a.gradientOutputs === b.gradientOutputs && Math.fround(a.sgdWeightDecay) === Math.fround(b.sgdWeightDecay);
}

/**
 * What the ORT optimizer models can express of a train config; throws a UserError for the rest.
 * AdamW: everything (torch.optim.AdamW). SGD: SGDOptimizerV2 is p ← p − lr·g with no state, so
 * momentum must be 0; weight decay is folded into the training model's gradient (torch's coupled
 * SGD decay, g + wd·p).
 */
export function checkOrtTrainConfig(t: TrainConfig): void {
  if (t.optimizer === 'sgd' && t.momentum !== 0) {
    throw new UserError(
      `ORT training cannot do SGD with momentum ${t.momentum}: its SGD optimizer (com.microsoft SGDOptimizerV2) is p <- p - lr*g with no momentum buffer; ` +
        'pass --momentum 0 (weight decay is supported) or use --optimizer adamw',
    );
  }
}

/**
 * Parameter-name patterns for --freeze: `/regex/` or `re:regex` (unanchored RegExp test), else a
 * glob matched against the whole name (`*` any run of characters, dots included; `?` one
 * character). Several patterns: comma-separated or repeated.
 */
export function freezeMatcher(patterns: string[]): (name: string) => boolean {
  const tests: ((n: string) => boolean)[] = [];
  for (const raw of patterns.flatMap((p) => p.split(',')).map((p) => p.trim()).filter(Boolean)) {
    let src: string | null = null;
    if (raw.length > 2 && raw.startsWith('/') && raw.endsWith('/')) src = raw.slice(1, -1);
    else if (raw.startsWith('re:')) src = raw.slice(3);
    if (src !== null) {
      let re: RegExp;
      try {
        re = new RegExp(src);
      } catch (e) {
        throw new UserError(`invalid --freeze regex '${raw}': ${(e as Error).message}`);
      }
      tests.push((n) => re.test(n));
    } else {
      const re = new RegExp('^' + raw.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.') + '$');
      tests.push((n) => re.test(n));
    }
  }
  return (n) => tests.some((t) => t(n));
}

/** Resolves --freeze patterns against a config's parameters; every pattern must match something, and something must stay trainable. */
export function resolveFrozen(cfg: RunConfig, patterns: string[]): string[] {
  if (patterns.length === 0) return [];
  const names = buildGradientCore(cfg, { frozen: () => true }).params.map((p) => p.value.name);
  for (const p of patterns.flatMap((x) => x.split(',')).map((x) => x.trim()).filter(Boolean)) {
    if (!names.some(freezeMatcher([p]))) throw new UserError(`--freeze '${p}' matches no parameter of ${cfg.preset} (parameters: ${names.join(', ')})`);
  }
  const m = freezeMatcher(patterns);
  const frozen = names.filter(m);
  if (frozen.length === names.length) throw new UserError(`--freeze ${patterns.join(',')} freezes every parameter; nothing would train`);
  return frozen;
}

/** Per-step learning rates of a whole run, exactly as the trainer computes them (lrAt per step). */
export function lrSchedule(t: TrainConfig, stepsPerEpoch: number): Float64Array {
  const n = t.epochs * stepsPerEpoch;
  const out = new Float64Array(n);
  for (let k = 0; k < n; k++) {
    const epoch = Math.floor(k / stepsPerEpoch);
    const i = k - epoch * stepsPerEpoch;
    out[k] = lrAt(t, epoch + i / stepsPerEpoch, t.epochs);
  }
  return out;
}

/** The optimizer model of a run: AdamW or SGD from the train config, lr a constant or a per-step table. */
export function ortOptimizerModel(t: TrainConfig, lr: number | Float64Array, opset?: number, irVersion?: number): onnx.ModelProto {
  checkOrtTrainConfig(t);
  const constant = typeof lr === 'number' || lr.every((x) => x === lr[0]);
  return buildOptimizerModel({
    optimizer: t.optimizer,
    adamw: { beta1: t.beta1, beta2: t.beta2, epsilon: t.eps, weightDecay: t.weightDecay },
    lr: typeof lr === 'number' ? lr : constant ? lr[0] : Float32Array.from(lr),
    ...(opset !== undefined ? { opset } : {}),
    ...(irVersion !== undefined ? { irVersion } : {}),
  });
}

export interface OrtBuild extends OrtArtifacts {
  frozen: string[];
  key: TrainingModelKey;
  /** Initial training state (params from the builder, zero moments), frozen set included. */
  state: TrainState;
  /** The builder's parameters (graph order). */
  builderParams: Param[];
}

/** The model's forward + loss with every parameter as a graph input and no backward: the eval model. */
function evalModel(cfg: RunConfig): onnx.ModelProto {
  // The gradient core with every parameter frozen is exactly forward + CE (+ ε·LJ).
  const core = buildGradientCore(cfg, { frozen: () => true });
  const { b } = core;
  b.output(core.loss, 'loss');
  b.output(core.ce, 'ce_loss');
  b.output(core.lj ?? b.scalar(0), 'lj_loss');
  b.output(core.correct, 'correct');
  b.output(core.model.logits, 'logits');
  return b.toModel({ name: `${cfg.preset}-ort-eval`, paramsAsInputs: true, docString: 'ljtrain ORT eval model: forward + loss' });
}

/**
 * Builds training_model / eval_model / optimizer_model / checkpoint for a config. `frozen`: names
 * of parameters that do not train (no gradient buffer, no accumulator, no optimizer state; stored
 * as frozen_params). `lr`: what the optimizer model applies under onnxruntime-web (default the
 * config's base lr, constant).
 */
export function buildOrtFromConfig(cfg: RunConfig, o: { frozen?: string[]; lr?: number | Float64Array } = {}): OrtBuild {
  checkOrtTrainConfig(cfg.train);
  const frozenSet = new Set(o.frozen ?? []);
  const core = buildGradientCore(cfg, { frozen: (n) => frozenSet.has(n) });
  const { b } = core;
  for (const n of frozenSet) if (!core.params.some((p) => p.value.name === n)) throw new GraphBuildError(`frozen parameter ${n} is not a parameter of ${cfg.preset}`);
  const key = trainingModelKey(cfg.train);
  const outs: Value[] = [
    b.output(core.loss, 'loss'),
    b.output(core.ce, 'ce_loss'),
    b.output(core.lj ?? b.scalar(0), 'lj_loss'),
    b.output(core.correct, 'correct'),
    b.output(core.model.logits, 'logits'),
  ];
  let grads: Value[] = core.grads;
  if (key.sgdWeightDecay > 0) {
    // torch.optim.SGD's weight decay: g + wd·p, folded into the gradient SGDOptimizerV2 sees.
    grads = b.scope('sgd_weight_decay', () => core.trainable.map((p: Param, i) => b.add(core.grads[i], b.mul(p.value, key.sgdWeightDecay))));
  }
  const extra = key.gradientOutputs ? core.trainable.map((p, i) => b.node('Identity', [grads[i]], {}, { shapes: [p.value.shape], dtypes: ['float32'] }, gradientOutputName(p.value.name))[0]) : [];
  const init = initialState(paramsFromBuilder(core.params), cfg.train.optimizer, cfg.train.seed, new Map());
  if (frozenSet.size) init.frozen = new Set(frozenSet);
  const lr = o.lr ?? cfg.train.lr;
  const ck: Checkpoint = stateToCheckpoint(init, cfg);
  ck.properties.strings[ORT_PROPS.trainingModel] = JSON.stringify(key);
  ck.properties.strings[ORT_PROPS.frozen] = JSON.stringify([...frozenSet]);
  ck.properties.floats[ORT_PROPS.runtimeLr] = ORT_WEB_RUNTIME_LR;
  ck.properties.strings[ORT_PROPS.lr] = JSON.stringify(describeLr(lr));
  const art = buildOrtArtifacts(b, outs[0], {
    params: core.params,
    outputs: outs,
    grads,
    evalModel: evalModel(cfg),
    extraTrainingOutputs: extra,
    optimizer: cfg.train.optimizer,
    adamw: { beta1: cfg.train.beta1, beta2: cfg.train.beta2, epsilon: cfg.train.eps, weightDecay: cfg.train.weightDecay },
    lr: typeof lr === 'number' ? lr : Float32Array.from(lr),
  });
  // The checkpoint: ljtrain's state layout (config, rng, epoch in the property bag) + the ORT notes.
  art.checkpoint = ck;
  return { ...art, frozen: [...frozenSet], key, state: init, builderParams: core.params };
}

function describeLr(lr: number | Float64Array): Record<string, unknown> {
  if (typeof lr === 'number') {
    return { kind: 'constant', lr, scale: lrScale(lr, ORT_WEB_RUNTIME_LR), note: `applied lr = fed learning_rate * ${lrScale(lr, ORT_WEB_RUNTIME_LR)} (onnxruntime-web feeds ${ORT_WEB_RUNTIME_LR})` };
  }
  return { kind: 'table', steps: lr.length, first: lr[0], last: lr[lr.length - 1], note: `applied lr = fed learning_rate * table[min(step-1, ${lr.length - 1})] / ${ORT_WEB_RUNTIME_LR}` };
}

// ---------------------------------------------------------------- eval model -> inference model

/**
 * The forward part of an ORT eval model as an inference model: keeps the nodes that `outputs`
 * (default logits) depend on, drops the loss nodes and the inputs they alone need (labels), and turns
 * parameter inputs into initializers from the checkpoint. Parameter inputs are the eval model's
 * inputs that the checkpoint names; the checkpoint must name exactly those with the same shapes.
 */
export function inferenceFromEvalModel(model: onnx.ModelProto, ck: Checkpoint, o: { outputs?: string[]; source?: string; ckptSource?: string } = {}): onnx.ModelProto {
  const src = o.source ?? 'eval model';
  const g = model.graph;
  if (!g) throw new UserError(`${src} has no graph`);
  const wanted = o.outputs ?? ['logits'];
  const produced = new Map<string, onnx.INodeProto>();
  for (const n of g.node ?? []) for (const out of n.output ?? []) produced.set(out, n);
  const inputs = new Map((g.input ?? []).map((v) => [v.name!, v]));
  for (const w of wanted) {
    if (!produced.has(w) && !inputs.has(w)) {
      throw new UserError(`${src} has no value named ${w} (its outputs: ${(g.output ?? []).map((x) => x.name).join(', ')}); it is not an ljtrain eval model`);
    }
  }
  // Parameters: the inputs the checkpoint names, and any other float input of fully static shape
  // (data inputs have a symbolic batch dimension); the checkpoint must hold exactly these.
  const tensors = [...ck.requiresGradParams, ...ck.frozenParams];
  const isStaticFloat = (v: onnx.IValueInfoProto) => {
    const t = v.type?.tensorType;
    const dims = t?.shape?.dim ?? [];
    return t?.elemType === onnx.TensorProto.DataType.FLOAT && dims.length > 0 && dims.every((d) => !d.dimParam && d.dimValue !== undefined && d.dimValue !== null);
  };
  const paramInputs = (g.input ?? []).filter((v) => tensors.some((t) => t.name === v.name) || isStaticFloat(v));
  const expected = paramInputs.map((v) => ({ name: v.name!, shape: (v.type?.tensorType?.shape?.dim ?? []).map((d) => (d.dimParam ? -1 : Number(d.dimValue))) }));
  try {
    checkParamsMatch(ck, expected, o.ckptSource ?? 'checkpoint');
  } catch (e) {
    throw new CheckpointError(`${(e as Error).message} (of ${src})`);
  }
  if (paramInputs.length === 0) throw new CheckpointError(`${o.ckptSource ?? 'checkpoint'} names none of the inputs of ${src}`);
  // Nodes the outputs need, in graph order.
  const need = new Set(wanted);
  const keep = new Set<onnx.INodeProto>();
  const nodes = g.node ?? [];
  for (let i = nodes.length - 1; i >= 0; i--) {
    const n = nodes[i];
    if (!(n.output ?? []).some((x) => need.has(x))) continue;
    keep.add(n);
    for (const x of n.input ?? []) if (x) need.add(x);
  }
  const byName = new Map(tensors.map((t) => [t.name, t]));
  const paramInits = paramInputs
    .filter((v) => need.has(v.name!))
    .map((v) => {
      const t = byName.get(v.name!)!;
      return onnx.TensorProto.create({ name: t.name, dims: t.dims, dataType: onnx.TensorProto.DataType.FLOAT, rawData: new Uint8Array(t.data.buffer.slice(t.data.byteOffset, t.data.byteOffset + t.data.byteLength)) });
    });
  const isParam = new Set(paramInputs.map((v) => v.name!));
  const userInputs = (g.input ?? []).filter((v) => !isParam.has(v.name!) && need.has(v.name!));
  const inits = (g.initializer ?? []).filter((t) => need.has(t.name!));
  const outInfo = new Map([...(g.output ?? []), ...(g.valueInfo ?? [])].map((v) => [v.name!, v]));
  const outputs = wanted.map((w) => outInfo.get(w) ?? onnx.ValueInfoProto.create({ name: w }));
  const kept = nodes.filter((n) => keep.has(n));
  const domains = new Set(kept.map((n) => n.domain ?? ''));
  const graph = onnx.GraphProto.create({
    name: `${g.name ?? 'model'}-inference`,
    node: kept,
    input: userInputs,
    output: outputs,
    initializer: [...inits, ...paramInits],
  });
  return onnx.ModelProto.create({
    irVersion: model.irVersion,
    opsetImport: (model.opsetImport ?? []).filter((op) => (op.domain ?? '') === '' || domains.has(op.domain!)),
    producerName: 'ljtrain',
    producerVersion: model.producerVersion ?? '0.1.0',
    graph,
    docString: `ljtrain inference model: the forward part of ${src}, weights from ${o.ckptSource ?? 'a checkpoint'}`,
  });
}
