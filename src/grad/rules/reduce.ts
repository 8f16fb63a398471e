/** Gradient rules for reductions, MatMul/Gemm, Softmax/LogSoftmax and LayerNormalization. */
import type { GraphBuilder } from '../../graph/builder';
import { constInts, normAxis } from '../../graph/shape-infer';
import { Attr, GraphBuildError, Node, Shape, Value } from '../../graph/types';
import { GradContext, registerGrad } from '../registry';

function intAttr(n: Node, k: string, d: number): number {
  const a: Attr | undefined = n.attrs[k];
  return a && a.kind === 'int' ? a.v : d;
}

/** The reduced axes of a reduction node, normalised; all axes when none are given. */
function reducedAxes(c: GradContext): number[] {
  const n = c.node;
  const x = c.x(0);
  let axes: number[] | null = null;
  if (n.opType === 'ReduceSum' || (n.inputs.length > 1 && n.inputs[1])) axes = n.inputs[1] ? constInts(n.inputs[1], 'axes') : null;
  else {
    const a = n.attrs.axes;
    axes = a && a.kind === 'ints' ? a.v : null;
  }
  if (!axes || axes.length === 0) return x.shape.map((_, i) => i);
  return axes.map((a) => normAxis(a, x.rank)).sort((p, q) => p - q);
}

/** Brings a reduction's output (or its gradient) back to keepdims form and expands it to x's shape. */
function expandBack(c: GradContext, g: Value, axes: number[]): Value {
  const { b } = c;
  const x = c.x(0);
  const keep = intAttr(c.node, 'keepdims', 1) === 1;
  const k = keep ? g : b.unsqueeze(g, axes);
  return b.expand(k, b.shapeOf(x), x.shape);
}

function keepdimsForm(c: GradContext, v: Value, axes: number[]): Value {
  return intAttr(c.node, 'keepdims', 1) === 1 ? v : c.b.unsqueeze(v, axes);
}

/** Number of reduced elements, static where the shape is known, otherwise computed at run time. */
function reducedCount(b: GraphBuilder, x: Value, axes: number[], dtype: Value['dtype']): Value | number {
  const dims = axes.map((a) => x.shape[a]);
  if (dims.every((d) => typeof d === 'number')) return (dims as number[]).reduce((p, q) => p * q, 1);
  const shp = b.cast(b.gather(b.shapeOf(x), b.ints(axes)), dtype);
  return b.op('ReduceProd', [shp], { keepdims: { kind: 'int', v: 0 } }, { shapes: [[]] });
}

registerGrad('ReduceSum', (c, [dy]) => [expandBack(c, dy!, reducedAxes(c)), null]);
registerGrad('ReduceMean', (c, [dy]) => {
  const axes = reducedAxes(c);
  const n = reducedCount(c.b, c.x(0), axes, dy!.dtype);
  return [expandBack(c, c.b.div(dy!, n), axes), null];
});
// ReduceMax: the gradient is split evenly between tied maxima (as torch.amax).
registerGrad('ReduceMax', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0);
  const axes = reducedAxes(c);
  const mask = b.cast(b.equal(x, keepdimsForm(c, c.y(0), axes)), x.dtype);
  const count = b.reduceSum(mask, axes, true);
  return [b.mul(mask, b.div(keepdimsForm(c, dy!, axes), count)), null];
});
// ReduceL2: d||x|| = x/||x||, and 0 where ||x|| = 0 (as torch's norm backward).
registerGrad('ReduceL2', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0);
  const axes = reducedAxes(c);
  const y = keepdimsForm(c, c.y(0), axes);
  const safe = b.where(b.equal(y, 0), 1, y);
  return [b.mul(b.div(x, safe), keepdimsForm(c, dy!, axes)), null];
});

function transposeLast2(b: GraphBuilder, v: Value): Value {
  const r = v.rank;
  const perm = v.shape.map((_, i) => i);
  perm[r - 2] = r - 1;
  perm[r - 1] = r - 2;
  return b.transpose(v, perm);
}

function isLast2Transpose(v: Value): boolean {
  const n = v.producer;
  if (!n || n.opType !== 'Transpose') return false;
  const a = n.attrs.perm;
  if (!a || a.kind !== 'ints') return false;
  const r = a.v.length;
  return a.v.every((p, i) => (i < r - 2 ? p === i : p === (i === r - 2 ? r - 1 : r - 2)));
}

// MatMul (rank >= 2): dA = dY B^T, dB = A^T dY, each summed over broadcast batch dims.
registerGrad('MatMul', (c, [dy]) => {
  const { b } = c;
  const A = c.x(0), B = c.x(1);
  if (A.rank < 2 || B.rank < 2) throw new GraphBuildError(`MatMul gradient needs rank >= 2 operands (node ${c.node.name})`);
  // An operand that is itself a last-two-axes Transpose gets its gradient in transposed form,
  // (dyᵀA)ᵀ, so the Transpose rule's inverse cancels against it (ORT removes the pair and fuses
  // the other into the MatMul) instead of transposing a full gradient tensor (cos = f̂ f̂ᵀ in LJ).
  const dA = isLast2Transpose(A) ? transposeLast2(b, b.matmul(B, transposeLast2(b, dy!))) : b.matmul(dy!, transposeLast2(b, B));
  let dB: Value;
  if (isLast2Transpose(B)) dB = transposeLast2(b, b.matmul(transposeLast2(b, dy!), A));
  else if (B.rank === 2 && A.rank > 2 && typeof A.shape[A.rank - 1] === 'number' && typeof dy!.shape[dy!.rank - 1] === 'number') {
    // A weight shared across batch dims: one (K, M·…)·(M·…, N) GEMM instead of a batched
    // outer product per sample followed by a ReduceSum over the batch.
    const a2 = b.reshape(A, [-1, A.shape[A.rank - 1] as number]);
    const g2 = b.reshape(dy!, [-1, dy!.shape[dy!.rank - 1] as number]);
    dB = b.matmul(b.transpose(a2, [1, 0]), g2);
  } else dB = b.matmul(transposeLast2(b, A), dy!);
  return [c.unbroadcast(dA, A), c.unbroadcast(dB, B)];
});

// Gemm: Y = alpha * op(A) op(B) + beta * C.
registerGrad('Gemm', (c, [dy]) => {
  const { b } = c;
  const n = c.node;
  const A = c.x(0), B = c.x(1);
  const tA = intAttr(n, 'transA', 0) === 1, tB = intAttr(n, 'transB', 0) === 1;
  const alphaA = n.attrs.alpha, betaA = n.attrs.beta;
  const alpha = alphaA && alphaA.kind === 'float' ? alphaA.v : 1;
  const beta = betaA && betaA.kind === 'float' ? betaA.v : 1;
  const g = alpha === 1 ? dy! : b.mul(dy!, alpha);
  // dA = g op(B)^T (transposed back if transA); dB likewise.
  const dA = tA ? b.gemm(B, g, null, { transA: tB, transB: true }) : b.gemm(g, B, null, { transB: !tB });
  const dB = tB ? b.gemm(g, A, null, { transA: true, transB: tA }) : b.gemm(A, g, null, { transA: !tA });
  const C = n.inputs[2];
  const dC = C ? c.unbroadcast(beta === 1 ? dy! : b.mul(dy!, beta), C) : null;
  return [dA, dB, dC];
});

// Softmax: dx = y * (dy - sum(dy * y)); LogSoftmax: dx = dy - softmax * sum(dy).
registerGrad('Softmax', (c, [dy]) => {
  const { b } = c;
  const y = c.y(0);
  const axis = normAxis(intAttr(c.node, 'axis', -1), y.rank);
  const s = b.reduceSum(b.mul(dy!, y), [axis], true);
  return [b.mul(y, b.sub(dy!, s))];
});
registerGrad('LogSoftmax', (c, [dy]) => {
  const { b } = c;
  const y = c.y(0);
  const axis = normAxis(intAttr(c.node, 'axis', -1), y.rank);
  return [b.sub(dy!, b.mul(b.exp(y), b.reduceSum(dy!, [axis], true)))];
});

// LayerNormalization over axes [axis, rank): statistics recomputed in the input's precision
// (the optional Mean/InvStdDev outputs are float32 even for double inputs).
registerGrad('LayerNormalization', (c, dys) => {
  const { b } = c;
  const x = c.x(0), scale = c.x(1);
  const bias = c.node.inputs[2] ?? null;
  if (dys[1] || dys[2]) {
    throw new GraphBuildError(`LayerNormalization gradient through the Mean/InvStdDev outputs is not supported (node ${c.node.name})`);
  }
  const dy = dys[0];
  if (!dy) return [null, null, null];
  const axis = normAxis(intAttr(c.node, 'axis', -1), x.rank);
  const epsA = c.node.attrs.epsilon;
  const eps = epsA && epsA.kind === 'float' ? epsA.v : 1e-5;
  const axes = Array.from({ length: x.rank - axis }, (_, i) => axis + i);
  const mean = b.reduceMean(x, axes, true);
  const xc = b.sub(x, mean);
  const invStd = b.reciprocal(b.sqrt(b.add(b.reduceMean(b.mul(xc, xc), axes, true), eps)));
  const xhat = b.mul(xc, invStd);
  const g = b.mul(dy, scale);
  const mg = b.reduceMean(g, axes, true);
  const mgx = b.reduceMean(b.mul(g, xhat), axes, true);
  const dx = b.mul(invStd, b.sub(b.sub(g, mg), b.mul(xhat, mgx)));
  const lead = Array.from({ length: axis }, (_, i) => i);
  const sumLead = (v: Value, target: Shape) => {
    const r = lead.length ? b.reduceSum(v, lead, false) : v;
    return c.unbroadcast(r, { shape: target } as Value);
  };
  const dScale = sumLead(b.mul(dy, xhat), scale.shape);
  const dBias = bias ? sumLead(dy, bias.shape) : null;
  return [dx, dScale, dBias];
});
