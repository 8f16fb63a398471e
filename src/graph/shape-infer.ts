/**
 * Build-time shape and dtype inference, one function per op type. A mismatch throws a plain Error
 * describing the shapes; the builder adds the scope and op name.
 */
import type { DType } from '../onnx/proto';
import { Attr, Dim, Shape, Value, numel, shapeStr } from './types';

export interface OutInfo {
  dtype: DType;
  shape: Shape;
}

type InferFn = (ins: (Value | null)[], attrs: Record<string, Attr>, nOut: number) => OutInfo[];

function intAttr(attrs: Record<string, Attr>, k: string, dflt: number): number {
  const a = attrs[k];
  return a && a.kind === 'int' ? a.v : dflt;
}
function intsAttr(attrs: Record<string, Attr>, k: string): number[] | null {
  const a = attrs[k];
  return a && a.kind === 'ints' ? a.v : null;
}

function req(ins: (Value | null)[], i: number): Value {
  const v = ins[i];
  if (!v) throw new Error(`input ${i} is required`);
  return v;
}

/** Reads a build-time int64 constant (axes, shapes, slice bounds). */
export function constInts(v: Value | null, what: string): number[] {
  if (!v || !v.constData) throw new Error(`${what} must be a build-time constant`);
  return Array.from(v.constData.data as ArrayLike<number | bigint>, (x) => Number(x));
}

export function normAxis(axis: number, rank: number): number {
  const a = axis < 0 ? axis + rank : axis;
  if (a < 0 || a >= rank) throw new Error(`axis ${axis} is out of range for rank ${rank}`);
  return a;
}

/** Numpy broadcasting of two shapes; symbolic dims broadcast only with 1 or the same symbol. */
export function broadcastShapes(a: Shape, b: Shape): Shape {
  const n = Math.max(a.length, b.length);
  const out: Dim[] = [];
  for (let i = 0; i < n; i++) {
    const da = i < n - a.length ? 1 : a[i - (n - a.length)];
    const db = i < n - b.length ? 1 : b[i - (n - b.length)];
    if (da === db) out.push(da);
    else if (da === 1) out.push(db);
    else if (db === 1) out.push(da);
    else throw new Error(`shapes ${shapeStr(a)} and ${shapeStr(b)} do not broadcast`);
  }
  return out;
}

const same: InferFn = (ins) => [{ dtype: req(ins, 0).dtype, shape: req(ins, 0).shape }];

function elementwise(boolOut: boolean): InferFn {
  return (ins) => {
    const vs = ins.filter((v): v is Value => v !== null);
    const dt = vs[0].dtype;
    for (const v of vs) if (v.dtype !== dt) throw new Error(`dtype mismatch: ${vs.map((x) => x.dtype).join(' vs ')}`);
    let s: Shape = vs[0].shape;
    for (const v of vs.slice(1)) s = broadcastShapes(s, v.shape);
    return [{ dtype: boolOut ? 'bool' : dt, shape: s }];
  };
}

function reduce(axesFromInput: boolean): InferFn {
  return (ins, attrs) => {
    const x = req(ins, 0);
    const keep = intAttr(attrs, 'keepdims', 1) === 1;
    // Axes come as an input for ReduceSum (opset 13+) and for every reduction from opset 18.
    let axes: number[] | null = axesFromInput || ins[1] ? (ins[1] ? constInts(ins[1], 'axes') : null) : intsAttr(attrs, 'axes');
    if (!axes || axes.length === 0) axes = x.shape.map((_, i) => i);
    const ax = new Set(axes.map((a) => normAxis(a, x.rank)));
    const shape: Shape = [];
    x.shape.forEach((d, i) => {
      if (!ax.has(i)) shape.push(d);
      else if (keep) shape.push(1);
    });
    return [{ dtype: x.dtype, shape }];
  };
}

function matmulShape(a: Shape, b: Shape): Shape {
  if (a.length < 2 || b.length < 2) throw new Error(`MatMul needs rank >= 2 operands, got ${shapeStr(a)} and ${shapeStr(b)}`);
  const k1 = a[a.length - 1];
  const k2 = b[b.length - 2];
  if (k1 !== k2) throw new Error(`inner dimensions differ: ${shapeStr(a)} x ${shapeStr(b)}`);
  const batch = broadcastShapes(a.slice(0, -2), b.slice(0, -2));
  return [...batch, a[a.length - 2], b[b.length - 1]];
}

export const SHAPE_INFER: Record<string, InferFn> = {
  Add: elementwise(false), Sub: elementwise(false), Mul: elementwise(false), Div: elementwise(false),
  Max: elementwise(false), Min: elementwise(false), Sum: elementwise(false), Mean: elementwise(false),
  Pow: (ins) => [{ dtype: req(ins, 0).dtype, shape: broadcastShapes(req(ins, 0).shape, req(ins, 1).shape) }],
  Equal: elementwise(true), Greater: elementwise(true), Less: elementwise(true),
  GreaterOrEqual: elementwise(true), LessOrEqual: elementwise(true), And: elementwise(true), Or: elementwise(true),
  Not: same, Neg: same, Sqrt: same, Reciprocal: same, Exp: same, Log: same, Relu: same, Erf: same, Tanh: same,
  Sigmoid: same, Abs: same, Identity: same, Softmax: same, LogSoftmax: same, Floor: same, Sign: same,
  Clip: same, EyeLike: (ins, attrs) => [{ dtype: dtypeAttr(attrs, req(ins, 0).dtype), shape: req(ins, 0).shape }],
  Where: (ins) => {
    const c = req(ins, 0), a = req(ins, 1), b = req(ins, 2);
    if (c.dtype !== 'bool') throw new Error(`condition must be bool, got ${c.dtype}`);
    if (a.dtype !== b.dtype) throw new Error(`branch dtypes differ: ${a.dtype} vs ${b.dtype}`);
    return [{ dtype: a.dtype, shape: broadcastShapes(c.shape, broadcastShapes(a.shape, b.shape)) }];
  },
  Cast: (ins, attrs) => [{ dtype: dtypeAttr(attrs, 'float32', 'to'), shape: req(ins, 0).shape }],
  MatMul: (ins) => {
    const a = req(ins, 0), b = req(ins, 1);
    if (a.dtype !== b.dtype) throw new Error(`dtype mismatch ${a.dtype} vs ${b.dtype}`);
    return [{ dtype: a.dtype, shape: matmulShape(a.shape, b.shape) }];
  },
  Gemm: (ins, attrs) => {
    const a = req(ins, 0), b = req(ins, 1);
    if (a.rank !== 2 || b.rank !== 2) throw new Error(`Gemm needs 2-D operands, got ${shapeStr(a.shape)} and ${shapeStr(b.shape)}`);
    const [m, ka] = intAttr(attrs, 'transA', 0) ? [a.shape[1], a.shape[0]] : a.shape;
    const [kb, n] = intAttr(attrs, 'transB', 0) ? [b.shape[1], b.shape[0]] : b.shape;
    if (ka !== kb) throw new Error(`inner dimensions differ: ${shapeStr(a.shape)} x ${shapeStr(b.shape)}`);
    if (ins[2]) broadcastShapes([m, n], ins[2].shape);
    return [{ dtype: a.dtype, shape: [m, n] }];
  },
  ReduceSum: reduce(true), ReduceMean: reduce(false), ReduceMax: reduce(false), ReduceL2: reduce(false),
  ReduceMin: reduce(false), ReduceSumSquare: reduce(false),
  ArgMax: (ins, attrs) => {
    const x = req(ins, 0);
    const axis = normAxis(intAttr(attrs, 'axis', 0), x.rank);
    const keep = intAttr(attrs, 'keepdims', 1) === 1;
    const shape = x.shape.flatMap((d, i) => (i === axis ? (keep ? [1] : []) : [d]));
    return [{ dtype: 'int64', shape }];
  },
  Shape: (ins) => [{ dtype: 'int64', shape: [req(ins, 0).rank] }],
  Size: () => [{ dtype: 'int64', shape: [] }],
  Reshape: (ins) => {
    const x = req(ins, 0);
    const target = constInts(ins[1], 'Reshape target shape');
    return [{ dtype: x.dtype, shape: reshapeShape(x.shape, target) }];
  },
  Transpose: (ins, attrs) => {
    const x = req(ins, 0);
    const perm = intsAttr(attrs, 'perm') ?? x.shape.map((_, i) => x.rank - 1 - i);
    if (perm.length !== x.rank || [...perm].sort().some((p, i) => p !== i)) throw new Error(`perm [${perm}] is not a permutation of rank ${x.rank}`);
    return [{ dtype: x.dtype, shape: perm.map((p) => x.shape[p]) }];
  },
  Concat: (ins, attrs) => {
    const vs = ins.filter((v): v is Value => v !== null);
    const axis = normAxis(intAttr(attrs, 'axis', 0), vs[0].rank);
    const out = [...vs[0].shape];
    let total: Dim = 0;
    for (const v of vs) {
      if (v.rank !== vs[0].rank) throw new Error(`ranks differ: ${vs.map((q) => shapeStr(q.shape)).join(', ')}`);
      v.shape.forEach((d, i) => {
        if (i !== axis && d !== out[i]) throw new Error(`shapes differ off the concat axis: ${vs.map((q) => shapeStr(q.shape)).join(', ')}`);
      });
      const d = v.shape[axis];
      total = typeof total === 'number' && typeof d === 'number' ? total + d : `concat_${axis}`;
    }
    out[axis] = total;
    return [{ dtype: vs[0].dtype, shape: out }];
  },
  Slice: (ins) => {
    const x = req(ins, 0);
    const starts = constInts(ins[1], 'Slice starts');
    const ends = constInts(ins[2], 'Slice ends');
    const axes = ins[3] ? constInts(ins[3], 'Slice axes') : starts.map((_, i) => i);
    const steps = ins[4] ? constInts(ins[4], 'Slice steps') : starts.map(() => 1);
    const out = [...x.shape];
    axes.forEach((a0, i) => {
      const a = normAxis(a0, x.rank);
      const d = x.shape[a];
      if (typeof d !== 'number') {
        if (starts[i] === 0 && ends[i] >= 2 ** 62 && steps[i] === 1) return; // full range of a symbolic dim
        throw new Error(`cannot slice symbolic dimension ${d}`);
      }
      const clampIdx = (v: number) => Math.min(Math.max(v < 0 ? v + d : v, 0), d);
      if (steps[i] !== 1) throw new Error('only step 1 slices are supported');
      out[a] = Math.max(0, clampIdx(ends[i]) - clampIdx(starts[i]));
    });
    return [{ dtype: x.dtype, shape: out }];
  },
  Split: (ins, attrs, nOut) => {
    const x = req(ins, 0);
    const axis = normAxis(intAttr(attrs, 'axis', 0), x.rank);
    const d = x.shape[axis];
    const sizes = ins[1] ? constInts(ins[1], 'Split sizes') : null;
    if (!sizes) throw new Error('Split needs explicit sizes');
    if (sizes.length !== nOut) throw new Error(`${sizes.length} split sizes for ${nOut} outputs`);
    if (typeof d === 'number' && sizes.reduce((p, q) => p + q, 0) !== d) throw new Error(`split sizes [${sizes}] do not sum to dimension ${d} of ${shapeStr(x.shape)}`);
    return sizes.map((n) => ({ dtype: x.dtype, shape: x.shape.map((e, i) => (i === axis ? n : e)) }));
  },
  Gather: (ins, attrs) => {
    const x = req(ins, 0), idx = req(ins, 1);
    const axis = normAxis(intAttr(attrs, 'axis', 0), x.rank);
    return [{ dtype: x.dtype, shape: [...x.shape.slice(0, axis), ...idx.shape, ...x.shape.slice(axis + 1)] }];
  },
  Squeeze: (ins) => {
    const x = req(ins, 0);
    const axes = ins[1] ? constInts(ins[1], 'Squeeze axes').map((a) => normAxis(a, x.rank)) : x.shape.flatMap((d, i) => (d === 1 ? [i] : []));
    for (const a of axes) if (x.shape[a] !== 1) throw new Error(`cannot squeeze axis ${a} of ${shapeStr(x.shape)}`);
    return [{ dtype: x.dtype, shape: x.shape.filter((_, i) => !axes.includes(i)) }];
  },
  Unsqueeze: (ins) => {
    const x = req(ins, 0);
    const axes0 = constInts(ins[1], 'Unsqueeze axes');
    const r = x.rank + axes0.length;
    const axes = axes0.map((a) => normAxis(a, r));
    const out: Dim[] = [];
    let j = 0;
    for (let i = 0; i < r; i++) out.push(axes.includes(i) ? 1 : x.shape[j++]);
    return [{ dtype: x.dtype, shape: out }];
  },
  Expand: (ins) => {
    const x = req(ins, 0);
    const target = constInts(ins[1], 'Expand shape');
    return [{ dtype: x.dtype, shape: broadcastShapes(x.shape, target) }];
  },
  LayerNormalization: (ins, attrs, nOut) => {
    const x = req(ins, 0);
    const axis = normAxis(intAttr(attrs, 'axis', -1), x.rank);
    const stat = x.shape.map((d, i) => (i < axis ? d : 1));
    return [{ dtype: x.dtype, shape: x.shape }, { dtype: 'float32' as DType, shape: stat }, { dtype: 'float32' as DType, shape: stat }].slice(0, nOut);
  },
  OneHot: (ins, attrs) => {
    const idx = req(ins, 0);
    const depth = constInts(ins[1], 'OneHot depth')[0];
    const vals = req(ins, 2);
    const r = idx.rank + 1;
    const axis = normAxis(intAttr(attrs, 'axis', -1), r);
    const out = [...idx.shape];
    out.splice(axis, 0, depth);
    return [{ dtype: vals.dtype, shape: out }];
  },
  ConstantOfShape: (ins, attrs) => {
    const s = req(ins, 0);
    const v = attrs.value;
    const dtype: DType = v && v.kind === 'tensor' ? v.dtype : 'float32';
    const shape: Shape = s.constData ? constInts(s, 'shape') : Array.from({ length: Number(s.shape[0]) }, (_, i) => `cos_${i}`);
    return [{ dtype, shape }];
  },
  Pad: (ins) => {
    const x = req(ins, 0);
    const pads = constInts(ins[1], 'Pad pads');
    const r = x.rank;
    return [{ dtype: x.dtype, shape: x.shape.map((d, i) => (typeof d === 'number' ? d + pads[i] + pads[i + r] : pads[i] + pads[i + r] === 0 ? d : `pad_${i}`)) }];
  },
  Range: (ins) => [{ dtype: req(ins, 0).dtype, shape: ['range'] }],
};

function dtypeAttr(attrs: Record<string, Attr>, dflt: DType, key = 'dtype'): DType {
  const a = attrs[key];
  if (!a || a.kind !== 'int') return dflt;
  const map: Record<number, DType> = { 1: 'float32', 11: 'float64', 7: 'int64', 6: 'int32', 9: 'bool' };
  const d = map[a.v];
  if (!d) throw new Error(`unsupported dtype code ${a.v}`);
  return d;
}

/** Reshape semantics: 0 copies the input dim (allowzero=0), -1 is inferred. */
export function reshapeShape(inShape: Shape, target: number[]): Shape {
  const out: Dim[] = target.map((t, i) => {
    if (t === 0) {
      if (i >= inShape.length) throw new Error(`target ${JSON.stringify(target)} copies dim ${i} that ${shapeStr(inShape)} lacks`);
      return inShape[i];
    }
    return t;
  });
  const inferIdx = out.indexOf(-1);
  if (out.filter((d) => d === -1).length > 1) throw new Error(`target ${JSON.stringify(target)} has more than one -1`);
  // Symbolic dims must cancel between input and output for the numeric check to make sense.
  const inSyms = inShape.filter((d): d is string => typeof d === 'string');
  const outSyms = out.filter((d): d is string => typeof d === 'string');
  const leftover = [...inSyms];
  for (const s of outSyms) {
    const k = leftover.indexOf(s);
    if (k < 0) throw new Error(`cannot reshape ${shapeStr(inShape)} to ${JSON.stringify(target)}`);
    leftover.splice(k, 1);
  }
  const inNum = numel(inShape.filter((d) => typeof d === 'number'))!;
  const outNum = numel(out.filter((d) => typeof d === 'number' && d !== -1))!;
  if (inferIdx >= 0) {
    if (leftover.length === 0) {
      if (outNum === 0 || inNum % outNum !== 0) throw new Error(`cannot reshape ${shapeStr(inShape)} to ${JSON.stringify(target)}`);
      out[inferIdx] = inNum / outNum;
    } else if (leftover.length === 1 && inNum === outNum) {
      out[inferIdx] = leftover[0];
    } else {
      // Canonical form, so two reshapes of the same data agree (batch*50, not batch*12800/256).
      out[inferIdx] = inNum % outNum === 0 ? `${leftover.join('*')}*${inNum / outNum}` : `${leftover.join('*')}*${inNum}/${outNum}`;
    }
  } else if (leftover.length > 0 || inNum !== outNum) {
    throw new Error(`cannot reshape ${shapeStr(inShape)} (${inNum} elements) to ${JSON.stringify(target)}`);
  }
  return out;
}
