/**
 * Reverse-mode autodiff over a built graph. Walks the nodes between `wrt` and `loss` in reverse,
 * calls one registered rule per node, and sums the gradients of values used more than once.
 * The backward pass is appended to the same builder as plain ai.onnx ops.
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError, Node, Value, shapeStr } from '../graph/types';
import { isFloat } from '../onnx/proto';
import { GRAD_RULES, GradContext, NON_DIFFERENTIABLE, unbroadcast } from './registry';
import './rules';

export interface BackwardOptions {
  /** Gradient of `loss` to start from; defaults to ones (so a scalar loss gets d loss / d x). */
  seed?: Value;
}

/**
 * Returns d loss / d v for every v in `wrt` (null when v does not influence loss).
 * Throws naming the op and node when a node on the path has no rule and is not declared
 * non-differentiable.
 */
export function backward(b: GraphBuilder, loss: Value, wrt: Value[], opts: BackwardOptions = {}): (Value | null)[] {
  if (!isFloat(loss.dtype)) throw new GraphBuildError(`backward: loss ${loss.name} is ${loss.dtype}, not a float`);
  if (!opts.seed && loss.shape.some((d) => d !== 1)) throw new GraphBuildError(`backward: loss ${loss.name} ${shapeStr(loss.shape)} is not a scalar; pass a seed gradient`);

  // Values that depend on some wrt value (forward reach).
  const dependent = new Set<Value>(wrt);
  for (const n of b.nodes) {
    if (n.inputs.some((v) => v && dependent.has(v))) for (const o of n.outputs) if (isFloat(o.dtype)) dependent.add(o);
  }
  // Nodes that lead to the loss (backward reach).
  const needed = new Set<Value>([loss]);
  const onPath: Node[] = [];
  for (let i = b.nodes.length - 1; i >= 0; i--) {
    const n = b.nodes[i];
    if (!n.outputs.some((o) => needed.has(o))) continue;
    if (!n.inputs.some((v) => v && dependent.has(v))) continue;
    onPath.push(n);
    for (const v of n.inputs) if (v && dependent.has(v)) needed.add(v);
  }

  const contribs = new Map<Value, Value[]>();
  const push = (v: Value, g: Value) => {
    const l = contribs.get(v);
    if (l) l.push(g);
    else contribs.set(v, [g]);
  };
  const total = (v: Value): Value | null => {
    const l = contribs.get(v);
    if (!l || l.length === 0) return null;
    if (l.length === 1) return l[0];
    const s = l.length === 2 ? b.add(l[0], l[1]) : b.op('Sum', l);
    contribs.set(v, [s]);
    return s;
  };

  const start = b.nodes.length;
  const grads = b.scope('grad', () => {
    push(loss, opts.seed ?? b.constant(loss.dtype, loss.shape as number[], [1]));
    for (const n of onPath) {
      const dys = n.outputs.map(total);
      if (dys.every((d) => d === null)) continue;
      if (NON_DIFFERENTIABLE.has(n.opType)) continue;
      const rule = GRAD_RULES.get(n.opType);
      const where = `node ${n.name} (${n.opType})`;
      if (!rule) throw new GraphBuildError(`no gradient rule for op ${n.opType} at ${where}: add one in src/grad/rules or declare it non-differentiable`);
      const ctx: GradContext = {
        b,
        node: n,
        x: (i) => {
          const v = n.inputs[i];
          if (!v) throw new GraphBuildError(`${where}: gradient rule needs input ${i}, which is omitted`);
          return v;
        },
        y: (i) => n.outputs[i],
        unbroadcast: (g, to) => unbroadcast(b, g, to.shape, where),
      };
      const dxs = rule(ctx, dys);
      n.inputs.forEach((v, i) => {
        const g = dxs[i];
        if (!v || !g || !dependent.has(v)) return;
        if (g.shape.length !== v.shape.length || g.shape.some((d, k) => typeof d === 'number' && typeof v.shape[k] === 'number' && d !== v.shape[k])) {
          throw new GraphBuildError(`${where}: gradient rule gave ${shapeStr(g.shape)} for input ${v.name} ${shapeStr(v.shape)}`);
        }
        push(v, g);
      });
    }
    return wrt.map(total);
  });
  pruneUnused(b, start, grads);
  return grads;
}

/**
 * Drops the nodes this pass emitted that no returned gradient needs. Rules build a gradient for
 * every input (e.g. dX = dY·Wᵀ of a first layer, whose X is data), and onnxruntime runs such
 * unused nodes all the same: it does not prune a graph to its outputs.
 */
function pruneUnused(b: GraphBuilder, start: number, grads: (Value | null)[]): void {
  const live = new Set<Value>(grads.filter((g): g is Value => g !== null));
  const kept: Node[] = [];
  for (let i = b.nodes.length - 1; i >= start; i--) {
    const n = b.nodes[i];
    if (!n.outputs.some((o) => live.has(o))) continue;
    kept.push(n);
    for (const v of n.inputs) if (v) live.add(v);
  }
  b.nodes.splice(start, b.nodes.length - start, ...kept.reverse());
}
