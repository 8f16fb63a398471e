/**
 * Assembles the graphs of a run from its config:
 *  - gradient core: forward + cross-entropy + ε·LJ + backward (one place, shared by every format);
 *  - native train step: the core + the optimizer update, params and state in, new values out;
 *  - eval: forward + cross-entropy + accuracy count, no LJ, no backward;
 *  - inference: input → logits (+ features), trained weights as initializers.
 */
import type { RunConfig } from '../config';
import { GraphBuilder, Param } from '../graph/builder';
import { GraphBuildError, Value } from '../graph/types';
import { backward } from '../grad/backward';
import { crossEntropy } from '../losses/cross-entropy';
import { ljLoss } from '../losses/lj';
import { ModelOutputs, buildModel } from '../models';
import type { onnx } from '../onnx/proto';
import { OptimizerKind, optimizerUpdate, stateName, stateSlots } from '../optim/optimizers';

export const BATCH_DIM = 'batch';

export interface ForwardGraph {
  b: GraphBuilder;
  input: Value;
  labels: Value | null;
  model: ModelOutputs;
}

/** The model's forward pass on a fresh builder (params seeded by cfg.initSeed). */
export function buildForward(cfg: RunConfig, withLabels: boolean): ForwardGraph {
  const b = new GraphBuilder({ seed: cfg.initSeed });
  const input = b.input('input', 'float32', [BATCH_DIM, ...cfg.model.image]);
  const labels = withLabels ? b.input('labels', 'int64', [BATCH_DIM]) : null;
  const model = buildModel(b, input, cfg.model);
  return { b, input, labels, model };
}

/** Resolves which feature the LJ loss uses and how its particles are formed. */
export function ljAttach(cfg: RunConfig, model: ModelOutputs): { feature: Value; particles: 'tokens' | 'batch'; name: string } {
  const name = cfg.lj.on || model.defaultFeature;
  const feature = model.features[name];
  if (!feature) throw new GraphBuildError(`invalid lj-on '${name}': the ${cfg.model.type} model has features ${Object.keys(model.features).join(', ')}`);
  let particles = cfg.lj.particles;
  if (particles === 'auto') particles = feature.rank === 3 ? 'tokens' : 'batch';
  if (particles === 'tokens' && feature.rank !== 3) throw new GraphBuildError(`invalid lj-particles tokens: feature '${name}' is (b, d); use --lj-particles batch`);
  if (particles === 'batch' && feature.rank === 3) throw new GraphBuildError(`invalid lj-particles batch: feature '${name}' is (b, l, d); use --lj-particles tokens or --lj-on a (b, d) feature`);
  return { feature, particles, name };
}

export interface GradientCore extends ForwardGraph {
  loss: Value;
  ce: Value;
  lj: Value | null;
  correct: Value;
  params: Param[];
  trainable: Param[];
  grads: Value[];
}

/** Forward + CE (+ ε·LJ) + backward w.r.t. the trainable parameters. */
export function buildGradientCore(cfg: RunConfig, opts: { frozen?: (name: string) => boolean } = {}): GradientCore {
  const f = buildForward(cfg, true);
  const { b, model } = f;
  const { loss: ce, correct } = crossEntropy(b, model.logits, f.labels!);
  let lj: Value | null = null;
  let loss = ce;
  if (cfg.lj.enabled) {
    const at = ljAttach(cfg, model);
    lj = ljLoss(b, at.feature, cfg.lj, at.particles);
    loss = b.add(ce, lj);
  }
  if (opts.frozen) for (const p of b.params) p.trainable = !opts.frozen(p.value.name);
  const trainable = b.params.filter((p) => p.trainable);
  const grads = backward(b, loss, trainable.map((p) => p.value)).map((g, i) => {
    if (!g) throw new GraphBuildError(`parameter ${trainable[i].value.name} does not influence the loss`);
    return g;
  });
  return { ...f, loss, ce, lj, correct, params: b.params, trainable, grads };
}

export interface NativeTrainStep {
  model: onnx.ModelProto;
  params: Param[];
  /** Graph output name of each updated parameter / state, keyed by the input it replaces. */
  next: Record<string, string>;
  stateNames: string[];
}

export const nextName = (input: string) => `next.${input}`;

/** The fused native train step: one ORT run does forward, backward and the optimizer update. */
export function buildNativeTrainStep(cfg: RunConfig, kind: OptimizerKind): NativeTrainStep {
  const core = buildGradientCore(cfg);
  const { b } = core;
  b.output(core.loss, 'loss');
  b.output(core.ce, 'ce_loss');
  b.output(core.lj ?? b.scalar(0), 'lj_loss');
  b.output(core.correct, 'correct');
  const upd = optimizerUpdate(b, kind, core.trainable.map((p) => p.value), core.grads);
  const next: Record<string, string> = {};
  const stateNames: string[] = [];
  core.trainable.forEach((p, i) => {
    next[p.value.name] = b.output(upd.params[i], nextName(p.value.name)).name;
    stateSlots(kind).forEach((s, k) => {
      const n = stateName(s, p.value.name);
      stateNames.push(n);
      next[n] = b.output(upd.states[i][k], nextName(n)).name;
    });
  });
  return { model: b.toModel({ name: `${cfg.preset}-train-step`, paramsAsInputs: true }), params: core.params, next, stateNames };
}

/** Eval graph: params as inputs (fed from the trainer), outputs logits, ce_loss, correct. */
export function buildEval(cfg: RunConfig): onnx.ModelProto {
  const f = buildForward(cfg, true);
  const { b } = f;
  const { loss, correct } = crossEntropy(b, f.model.logits, f.labels!);
  b.output(f.model.logits, 'logits');
  b.output(loss, 'ce_loss');
  b.output(correct, 'correct');
  return b.toModel({ name: `${cfg.preset}-eval`, paramsAsInputs: true });
}

/** Inference-only graph with the given weights as initializers. */
export function buildInference(cfg: RunConfig, weights: Map<string, Float32Array>, withFeatures: boolean): onnx.ModelProto {
  const f = buildForward(cfg, false);
  const { b } = f;
  for (const p of b.params) {
    const w = weights.get(p.value.name);
    if (!w) throw new GraphBuildError(`the checkpoint has no tensor for parameter ${p.value.name}`);
    if (w.length !== p.init.length) throw new GraphBuildError(`checkpoint tensor ${p.value.name} has ${w.length} values, the model needs ${p.init.length}`);
    p.init = w;
  }
  b.output(f.model.logits, 'logits');
  if (withFeatures) for (const [k, v] of Object.entries(f.model.features)) b.output(v, k);
  return b.toModel({ name: `${cfg.preset}-inference` });
}
