/**
 * Optimizer updates as graph fragments (plain ai.onnx ops), with hyperparameters as scalar graph
 * inputs so one train-step graph serves any lr, weight decay or betas.
 *
 * AdamW (torch.optim.AdamW): p ← p(1 − lr·wd); m ← β1 m + (1−β1) g; v ← β2 v + (1−β2) g²;
 *                             p ← p − lr/(1−β1ᵗ) · m / (√v/√(1−β2ᵗ) + eps)
 * SGD (torch.optim.SGD, dampening 0, no nesterov): g ← g + wd·p; buf ← μ buf + g (buf₀ = 0 gives
 *                             torch's buf₁ = g); p ← p − lr·buf
 */
import type { GraphBuilder } from '../graph/builder';
import { Value } from '../graph/types';

export type OptimizerKind = 'adamw' | 'sgd';

export interface OptimizerConfig {
  optimizer: OptimizerKind;
  lr: number;
  weightDecay: number;
  beta1: number;
  beta2: number;
  eps: number;
  momentum: number;
}

/** Per-parameter optimizer state slots. */
export function stateSlots(kind: OptimizerKind): string[] {
  return kind === 'adamw' ? ['m', 'v'] : ['momentum'];
}

export function stateName(slot: string, param: string): string {
  return `opt.${slot}.${param}`;
}

/** Names of the scalar hyperparameter inputs of the train-step graph. */
export const HYPER_INPUTS: Record<OptimizerKind, string[]> = {
  adamw: ['lr', 'step', 'weight_decay', 'beta1', 'beta2', 'adam_eps'],
  sgd: ['lr', 'weight_decay', 'momentum'],
};

export function hyperFeeds(c: OptimizerConfig, lr: number, step: number): Record<string, number> {
  return c.optimizer === 'adamw'
    ? { lr, step, weight_decay: c.weightDecay, beta1: c.beta1, beta2: c.beta2, adam_eps: c.eps }
    : { lr, weight_decay: c.weightDecay, momentum: c.momentum };
}

export interface UpdateResult {
  /** New parameter values, in the order of `params`. */
  params: Value[];
  /** New state per slot per parameter. */
  states: Value[][];
  /** State inputs per slot per parameter. */
  stateInputs: Value[][];
}

export function optimizerUpdate(b: GraphBuilder, kind: OptimizerKind, params: Value[], grads: Value[]): UpdateResult {
  return b.scope('optim', () => {
    const h: Record<string, Value> = {};
    for (const k of HYPER_INPUTS[kind]) h[k] = b.input(k, 'float32', []);
    const slots = stateSlots(kind);
    const stateInputs = params.map((p) => slots.map((s) => b.input(stateName(s, p.name), 'float32', p.shape)));
    const newParams: Value[] = [];
    const newStates: Value[][] = [];
    if (kind === 'adamw') {
      const decay = b.sub(1, b.mul(h.lr, h.weight_decay));
      const bc1 = b.sub(1, b.pow(h.beta1, h.step));
      const bc2 = b.sub(1, b.pow(h.beta2, h.step));
      const stepSize = b.div(h.lr, bc1);
      const invSqrtBc2 = b.reciprocal(b.sqrt(bc2));
      const omb1 = b.sub(1, h.beta1), omb2 = b.sub(1, h.beta2);
      params.forEach((p, i) => {
        const g = grads[i];
        const [m, v] = stateInputs[i];
        const m1 = b.add(b.mul(m, h.beta1), b.mul(g, omb1));
        const v1 = b.add(b.mul(v, h.beta2), b.mul(b.mul(g, g), omb2));
        const denom = b.add(b.mul(b.sqrt(v1), invSqrtBc2), h.adam_eps);
        newParams.push(b.sub(b.mul(p, decay), b.mul(b.div(m1, denom), stepSize)));
        newStates.push([m1, v1]);
      });
    } else {
      params.forEach((p, i) => {
        const g = b.add(grads[i], b.mul(p, h.weight_decay));
        const buf = b.add(b.mul(stateInputs[i][0], h.momentum), g);
        newParams.push(b.sub(p, b.mul(buf, h.lr)));
        newStates.push([buf]);
      });
    }
    return { params: newParams, states: newStates, stateInputs };
  });
}
