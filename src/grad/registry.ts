/**
 * Gradient rule registry. A rule maps the gradients of a node's outputs to the gradients of its
 * inputs (null where an input gets none), emitting plain ai.onnx ops through the builder.
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError, Node, Shape, Value, shapeStr } from '../graph/types';

export interface GradContext {
  b: GraphBuilder;
  node: Node;
  /** Input i of the node (throws if omitted). */
  x(i: number): Value;
  /** Output i of the node. */
  y(i: number): Value;
  /** Sums a broadcast gradient back to the shape of `to` (numpy broadcasting undone). */
  unbroadcast(g: Value, to: Value): Value;
}

/** dys[i] is the gradient of output i, or null when nothing downstream needs it. */
export type GradRule = (ctx: GradContext, dys: (Value | null)[]) => (Value | null)[];

export const GRAD_RULES = new Map<string, GradRule>();

/**
 * Ops whose outputs carry no gradient back to their inputs (integer/boolean results, shapes,
 * piecewise-constant functions, random and constant generators).
 */
export const NON_DIFFERENTIABLE = new Set<string>([
  'Shape', 'Size', 'ArgMax', 'ArgMin', 'Equal', 'Greater', 'Less', 'GreaterOrEqual', 'LessOrEqual',
  'Not', 'And', 'Or', 'Xor', 'OneHot', 'ConstantOfShape', 'Range', 'EyeLike', 'Floor', 'Ceil', 'Round', 'Sign',
  'RandomNormal', 'RandomUniform', 'RandomNormalLike', 'RandomUniformLike', 'Bernoulli', 'NonZero', 'IsNaN', 'IsInf',
]);

export function registerGrad(opType: string, rule: GradRule): void {
  if (GRAD_RULES.has(opType)) throw new Error(`gradient rule for ${opType} registered twice`);
  GRAD_RULES.set(opType, rule);
}

export function hasGradInfo(opType: string): boolean {
  return GRAD_RULES.has(opType) || NON_DIFFERENTIABLE.has(opType);
}

/** Sums g over the axes that broadcasting added or stretched, giving the shape `target`. */
export function unbroadcast(b: GraphBuilder, g: Value, target: Shape, where: string): Value {
  const s = g.shape;
  if (s.length < target.length) throw new GraphBuildError(`${where}: gradient ${shapeStr(s)} has lower rank than its input ${shapeStr(target)}`);
  const lead = s.length - target.length;
  const axes: number[] = [];
  for (let i = 0; i < s.length; i++) {
    if (i < lead) {
      axes.push(i);
      continue;
    }
    const t = target[i - lead];
    const d = s[i];
    if (t === d) continue;
    if (t === 1) axes.push(i);
    else throw new GraphBuildError(`${where}: cannot unbroadcast gradient ${shapeStr(s)} to ${shapeStr(target)}`);
  }
  if (axes.length === 0) return g;
  let r = b.reduceSum(g, axes, true);
  if (lead > 0) r = b.squeeze(r, Array.from({ length: lead }, (_, i) => i));
  return r;
}
