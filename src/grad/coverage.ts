/**
 * Gradient coverage: which nodes of a graph have an op that backward() could not handle, i.e. one
 * with neither a registered rule (GRAD_RULES) nor a NON_DIFFERENTIABLE declaration.
 *
 *   const b = new GraphBuilder();  ...build the forward graph and losses...
 *   assertCovered(b);              // before backward(): lists every uncovered op at once
 *
 * backward() only meets the nodes between its `wrt` values and the loss, and stops at the first
 * uncovered one; this check looks at every node, so it reports all of them together, including ops
 * that a later change of `wrt` (e.g. unfreezing a layer) would bring onto the gradient path.
 * Call it on the forward graph: the backward pass itself emits ops (Pad, ReduceProd ...) that need
 * no rules of their own.
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError } from '../graph/types';
import { GRAD_RULES, NON_DIFFERENTIABLE } from './registry';
import './rules';

export interface UncoveredOp {
  opType: string;
  /** The node's name, e.g. 'blocks.0.attn/Foo_12'. */
  node: string;
}

/** Nodes (in graph order) whose op has no gradient rule and is not declared non-differentiable. */
export function uncoveredOps(b: GraphBuilder): UncoveredOp[] {
  const out: UncoveredOp[] = [];
  for (const n of b.nodes) {
    const key = n.opType;
    if (n.domain && n.domain !== 'ai.onnx') {
      // Rules are keyed by ai.onnx op type; an op from another domain is never covered by one.
      out.push({ opType: `${n.domain}.${key}`, node: n.name });
      continue;
    }
    if (!GRAD_RULES.has(key) && !NON_DIFFERENTIABLE.has(key)) out.push({ opType: key, node: n.name });
  }
  return out;
}

/**
 * Throws a GraphBuildError listing every uncovered op type with (up to 5 of) its node names;
 * `what` names the graph in the message (e.g. 'vit-tiny train graph').
 */
export function assertCovered(b: GraphBuilder, what = 'graph'): void {
  const bad = uncoveredOps(b);
  if (bad.length === 0) return;
  const byOp = new Map<string, string[]>();
  for (const u of bad) byOp.set(u.opType, [...(byOp.get(u.opType) ?? []), u.node]);
  const lines = [...byOp].map(([op, nodes]) => `  ${op}: ${nodes.slice(0, 5).join(', ')}${nodes.length > 5 ? `, ... (${nodes.length} nodes)` : ''}`);
  throw new GraphBuildError(
    `${what}: ${byOp.size} op type(s) have no gradient rule and are not declared non-differentiable:\n${lines.join('\n')}\n` +
      'add a rule in src/grad/rules or declare the op in NON_DIFFERENTIABLE (src/grad/registry.ts)',
  );
}
