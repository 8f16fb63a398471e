/** Gradient rules for data movement: Reshape, Transpose, Concat, Slice, Gather, (Un)Squeeze, Expand. */
import { constInts, normAxis } from '../../graph/shape-infer';
import { GraphBuildError, Value, numel } from '../../graph/types';
import { GradContext, registerGrad } from '../registry';

/** Reshapes a gradient back to x's (possibly symbolic) shape through Shape(x). */
function reshapeBack(c: GradContext, g: Value): Value {
  const x = c.x(0);
  if (x.shape.every((d) => typeof d === 'number')) return c.b.reshape(g, x.shape as number[]);
  return c.b.reshape(g, c.b.shapeOf(x), x.shape);
}

registerGrad('Reshape', (c, [dy]) => [reshapeBack(c, dy!), null]);
registerGrad('Squeeze', (c, [dy]) => [reshapeBack(c, dy!), null]);
registerGrad('Unsqueeze', (c, [dy]) => [reshapeBack(c, dy!), null]);
registerGrad('Flatten', (c, [dy]) => [reshapeBack(c, dy!)]);
registerGrad('Expand', (c, [dy]) => [c.unbroadcast(dy!, c.x(0)), null]);

registerGrad('Transpose', (c, [dy]) => {
  const a = c.node.attrs.perm;
  const x = c.x(0);
  const perm = a && a.kind === 'ints' ? a.v : x.shape.map((_, i) => x.rank - 1 - i);
  const inv = new Array<number>(perm.length);
  perm.forEach((p, i) => (inv[p] = i));
  return [c.b.transpose(dy!, inv)];
});

// Concat: each input takes its slice of the gradient along the axis (sizes must be static).
registerGrad('Concat', (c, [dy]) => {
  const a = c.node.attrs.axis;
  const axis = normAxis(a && a.kind === 'int' ? a.v : 0, c.x(0).rank);
  let off = 0;
  return c.node.inputs.map((v) => {
    if (!v) return null;
    const d = v.shape[axis];
    if (typeof d !== 'number') throw new GraphBuildError(`Concat gradient needs static sizes along axis ${axis} (node ${c.node.name})`);
    const g = c.b.slice(dy!, [off], [off + d], [axis]);
    off += d;
    return g;
  });
});

// Slice (step 1, static bounds): pad the gradient back with zeros.
registerGrad('Slice', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0);
  const n = c.node;
  const starts = constInts(n.inputs[1], 'Slice starts');
  const ends = constInts(n.inputs[2], 'Slice ends');
  const axes = n.inputs[3] ? constInts(n.inputs[3], 'Slice axes') : starts.map((_, i) => i);
  const steps = n.inputs[4] ? constInts(n.inputs[4], 'Slice steps') : starts.map(() => 1);
  const pads = new Array<number>(2 * x.rank).fill(0);
  axes.forEach((a0, i) => {
    const a = normAxis(a0, x.rank);
    const d = x.shape[a];
    if (steps[i] !== 1) throw new GraphBuildError(`Slice gradient supports step 1 only (node ${n.name})`);
    if (typeof d !== 'number') {
      if (starts[i] === 0 && ends[i] >= 2 ** 62) return;
      throw new GraphBuildError(`Slice gradient needs a static size on axis ${a} (node ${n.name})`);
    }
    const cl = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
    const s = cl(starts[i]), e = Math.max(cl(ends[i]), s);
    pads[a] = s;
    pads[a + x.rank] = d - e;
  });
  return [b.op('Pad', [dy!, b.ints(pads)], {}, { shapes: [x.shape] }), null, null, null, null];
});

// Gather along axis k: dx = onehot(indices)^T contracted with dy, which sums repeated indices.
registerGrad('Gather', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0), idx = c.x(1);
  const a = c.node.attrs.axis;
  const axis = normAxis(a && a.kind === 'int' ? a.v : 0, x.rank);
  const N = x.shape[axis];
  const M = numel(idx.shape);
  const post = x.shape.slice(axis + 1);
  const Q = numel(post);
  if (typeof N !== 'number' || M === null || Q === null) {
    throw new GraphBuildError(`Gather gradient needs static index shape and static dims from the gather axis on (node ${c.node.name})`);
  }
  // OneHot on 1-D indices: ONNX shape inference rejects scalar indices.
  // ORT's CPU OneHot has kernels for int64 indices with float32 (not float64) values only.
  const idx64 = idx.dtype === 'int64' ? idx : b.cast(idx, 'int64');
  const oh32 = b.oneHot(idx64.rank === 1 ? idx64 : b.reshape(idx64, [M]), N, 'float32');
  const oh = dy!.dtype === 'float32' ? oh32 : b.cast(oh32, dy!.dtype); // [M, N]
  const ohT = b.transpose(oh, [1, 0]); // [N, M]
  const g3 = b.reshape(dy!, [-1, M, Q]); // [P, M, Q]
  const dx3 = b.matmul(ohT, g3); // [P, N, Q]
  return [reshapeBack(c, dx3), null];
});

// Split: the input gradient is the Concat of the pieces' gradients (zeros for unused pieces).
registerGrad('Split', (c, dys) => {
  const { b } = c;
  const a = c.node.attrs.axis;
  const axis = a && a.kind === 'int' ? a.v : 0;
  const parts = dys.map((g, i) => {
    if (g) return g;
    const y = c.y(i);
    return b.op('ConstantOfShape', [b.shapeOf(y)], { value: { kind: 'tensor', dtype: y.dtype, dims: [1], data: y.dtype === 'float64' ? new Float64Array(1) : new Float32Array(1) } }, { shapes: [y.shape], dtypes: [y.dtype] });
  });
  return [b.concat(parts, axis), null];
});
