/**
 * One table of gradient checks, one row per case (jax `check_vjp` style, see check-vjp.ts), run
 * through onnxruntime-node. Graphs are float64 wherever ORT's CPU kernels take double; inputs are
 * kept away from kinks (hand cases at the kinks are in kinks.test.ts).
 */
import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { Rng } from '../../src/graph/rng';
import { Value, aInt } from '../../src/graph/types';
import { ljLoss } from '../../src/losses/lj';
import { VjpCase, checkVjp } from './check-vjp';

/** U(lo, hi) with |x − k| ≥ 0.05 for each kink k (Clip bounds). */
const awayFrom = (kinks: number[], lo = -1.5, hi = 1.5) => (rng: Rng, n: number) =>
  Array.from({ length: n }, () => {
    let x: number;
    do x = rng.uniform(lo, hi);
    while (kinks.some((k) => Math.abs(x - k) < 0.05));
    return x;
  });
/** The 'distinct' grid shifted by 0.05: no ties with an input drawn from 'distinct'. */
const distinctShifted = (rng: Rng, n: number) => Array.from(rng.permutation(n), (k) => (k - Math.floor(n / 2)) * 0.1 + 0.08);

const i64 = (b: GraphBuilder, dims: number[], xs: number[]) => b.constant('int64', dims, xs);

/** Cross-entropy built by hand: −mean_i Σ_k onehot(y_i)_k · logSoftmax(z_i)_k. */
function crossEntropyByHand(b: GraphBuilder, logits: Value, labels: Value, classes: number): Value {
  // ORT's CPU OneHot has no double-valued kernel, so the one-hot is float32 and cast to the logits' type.
  let oh = b.oneHot(labels, classes, 'float32');
  if (logits.dtype !== 'float32') oh = b.cast(oh, logits.dtype);
  return b.neg(b.reduceMean(b.reduceSum(b.mul(oh, b.logSoftmax(logits, -1)), [-1], false), null, false));
}

const gemmCases: VjpCase[] = [];
for (const tA of [false, true]) {
  for (const tB of [false, true]) {
    const A = tA ? [4, 3] : [3, 4];
    const B = tB ? [5, 4] : [4, 5];
    const t = `transA=${+tA} transB=${+tB}`;
    gemmCases.push(
      { name: `Gemm ${t}, no C`, ins: [{ shape: A }, { shape: B }], f: (b, [a, q]) => b.gemm(a, q, null, { transA: tA, transB: tB }) },
      {
        name: `Gemm ${t}, alpha 0.7, beta 1.3, C [3,5]`,
        ins: [{ shape: A }, { shape: B }, { shape: [3, 5] }],
        f: (b, [a, q, c]) => b.gemm(a, q, c, { transA: tA, transB: tB, alpha: 0.7, beta: 1.3 }),
      },
    );
  }
}
gemmCases.push(
  { name: 'Gemm C broadcast [5], beta 0.5', ins: [{ shape: [3, 4] }, { shape: [4, 5] }, { shape: [5] }], f: (b, [a, q, c]) => b.gemm(a, q, c, { beta: 0.5 }) },
  { name: 'Gemm C broadcast [3,1], transB, alpha 2', ins: [{ shape: [3, 4] }, { shape: [5, 4] }, { shape: [3, 1] }], f: (b, [a, q, c]) => b.gemm(a, q, c, { transB: true, alpha: 2 }) },
  { name: 'Gemm C scalar [], transA', ins: [{ shape: [4, 3] }, { shape: [4, 5] }, { shape: [] }], f: (b, [a, q, c]) => b.gemm(a, q, c, { transA: true }) },
);

const reduceCases: VjpCase[] = [];
for (const op of ['ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceL2'] as const) {
  const gen = op === 'ReduceMax' ? 'distinct' : 'normal';
  const variants: { shape: number[]; axes: number[] | null; keep: boolean }[] = [
    { shape: [3, 4], axes: [1], keep: false },
    { shape: [3, 4], axes: [0], keep: true },
    { shape: [2, 3, 4], axes: [0, 2], keep: false },
    { shape: [2, 3, 4], axes: [-1], keep: true },
    { shape: [2, 3, 4], axes: [1], keep: false },
    { shape: [3, 4], axes: null, keep: false },
    { shape: [2, 3], axes: null, keep: true },
  ];
  for (const vr of variants) {
    reduceCases.push({
      name: `${op} [${vr.shape}] axes ${vr.axes ? `[${vr.axes}]` : 'all'} keepdims ${+vr.keep}`,
      ins: [{ shape: vr.shape, gen }],
      f: (b, [x]) => b.reduce(op, x, vr.axes, vr.keep),
    });
  }
}
// Opset 18 moves ReduceMean/Max/L2 axes from the attribute to an input: both forms must work.
for (const op of ['ReduceMean', 'ReduceMax', 'ReduceL2'] as const) {
  reduceCases.push({
    name: `${op} opset 18 (axes as input) [2,3,4] axes [0,2] keepdims 0`,
    opset: 18,
    ins: [{ shape: [2, 3, 4], gen: op === 'ReduceMax' ? 'distinct' : 'normal' }],
    f: (b, [x]) => b.reduce(op, x, [0, 2], false),
  });
}

const softmaxCases: VjpCase[] = [];
for (const op of ['Softmax', 'LogSoftmax'] as const) {
  const fn = (b: GraphBuilder, x: Value, axis: number) => (op === 'Softmax' ? b.softmax(x, axis) : b.logSoftmax(x, axis));
  softmaxCases.push(
    { name: `${op} [3,5] axis -1`, ins: [{ shape: [3, 5] }], f: (b, [x]) => fn(b, x, -1) },
    { name: `${op} [3,5] axis 0`, ins: [{ shape: [3, 5] }], f: (b, [x]) => fn(b, x, 0) },
    { name: `${op} [2,3,4] axis 1`, ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => fn(b, x, 1) },
  );
}

export const CASES: VjpCase[] = [
  // ---------------------------------------------------------------- MatMul, Gemm
  { name: 'MatMul 2-D [3,4]x[4,5]', ins: [{ shape: [3, 4] }, { shape: [4, 5] }], f: (b, [a, q]) => b.matmul(a, q) },
  { name: 'MatMul batched [2,3,4]x[2,4,5]', ins: [{ shape: [2, 3, 4] }, { shape: [2, 4, 5] }], f: (b, [a, q]) => b.matmul(a, q) },
  { name: 'MatMul broadcast batch [2,3,4,5]x[5,6]', ins: [{ shape: [2, 3, 4, 5] }, { shape: [5, 6] }], f: (b, [a, q]) => b.matmul(a, q) },
  { name: 'MatMul broadcast batch [2,1,3,4]x[3,4,2]', ins: [{ shape: [2, 1, 3, 4] }, { shape: [3, 4, 2] }], f: (b, [a, q]) => b.matmul(a, q) },
  { name: 'MatMul broadcast batch [3,4]x[2,4,5]', ins: [{ shape: [3, 4] }, { shape: [2, 4, 5] }], f: (b, [a, q]) => b.matmul(a, q) },
  ...gemmCases,

  // ---------------------------------------------------------------- binary arithmetic (with broadcasting)
  { name: 'Add [3,4]+[3,4]', ins: [{ shape: [3, 4] }, { shape: [3, 4] }], f: (b, [a, q]) => b.add(a, q) },
  { name: 'Add [3,4]+[4]', ins: [{ shape: [3, 4] }, { shape: [4] }], f: (b, [a, q]) => b.add(a, q) },
  { name: 'Add [2,1,4]+[3,1]', ins: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], f: (b, [a, q]) => b.add(a, q) },
  { name: 'Add []+[3,4]', ins: [{ shape: [] }, { shape: [3, 4] }], f: (b, [a, q]) => b.add(a, q) },
  { name: 'Add x+x (fan-out summed)', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.add(a, a) },
  { name: 'Sub [3,4]-[4]', ins: [{ shape: [3, 4] }, { shape: [4] }], f: (b, [a, q]) => b.sub(a, q) },
  { name: 'Sub [4]-[3,4]', ins: [{ shape: [4] }, { shape: [3, 4] }], f: (b, [a, q]) => b.sub(a, q) },
  { name: 'Sub [2,1,4]-[3,1]', ins: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], f: (b, [a, q]) => b.sub(a, q) },
  { name: 'Sub literal 1-x', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.sub(1, a) },
  { name: 'Mul [3,4]*[3,4]', ins: [{ shape: [3, 4] }, { shape: [3, 4] }], f: (b, [a, q]) => b.mul(a, q) },
  { name: 'Mul [2,1,4]*[3,1]', ins: [{ shape: [2, 1, 4] }, { shape: [3, 1] }], f: (b, [a, q]) => b.mul(a, q) },
  { name: 'Mul [3,4]*[]', ins: [{ shape: [3, 4] }, { shape: [] }], f: (b, [a, q]) => b.mul(a, q) },
  { name: 'Mul x*x', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.mul(a, a) },
  { name: 'Div [3,4]/[4]', ins: [{ shape: [3, 4] }, { shape: [4], gen: 'away' }], f: (b, [a, q]) => b.div(a, q) },
  { name: 'Div [2,1,4]/[3,1]', ins: [{ shape: [2, 1, 4] }, { shape: [3, 1], gen: 'away' }], f: (b, [a, q]) => b.div(a, q) },
  { name: 'Div [4]/[3,4]', ins: [{ shape: [4] }, { shape: [3, 4], gen: 'away' }], f: (b, [a, q]) => b.div(a, q) },
  { name: 'Div literal 2/x', ins: [{ shape: [3, 4], gen: 'away' }], f: (b, [a]) => b.div(2, a) },
  { name: 'Sum of 3 [3,4],[4],[3,1]', ins: [{ shape: [3, 4] }, { shape: [4] }, { shape: [3, 1] }], f: (b, xs) => b.op('Sum', xs) },
  { name: 'Sum of 2 [2,3]', ins: [{ shape: [2, 3] }, { shape: [2, 3] }], f: (b, xs) => b.op('Sum', xs) },
  { name: 'Max [3,4],[3,4]', ins: [{ shape: [3, 4], gen: 'distinct' }, { shape: [3, 4], gen: distinctShifted }], f: (b, [a, q]) => b.max(a, q) },
  { name: 'Max [3,4],[4]', ins: [{ shape: [3, 4], gen: 'distinct' }, { shape: [4], gen: distinctShifted }], f: (b, [a, q]) => b.max(a, q) },
  { name: 'Min [3,4],[3,4]', ins: [{ shape: [3, 4], gen: 'distinct' }, { shape: [3, 4], gen: distinctShifted }], f: (b, [a, q]) => b.min(a, q) },
  { name: 'Min [2,1,4],[3,1]', ins: [{ shape: [2, 1, 4], gen: 'distinct' }, { shape: [3, 1], gen: distinctShifted }], f: (b, [a, q]) => b.min(a, q) },

  // ---------------------------------------------------------------- Pow
  { name: 'Pow constant exponent 3', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.pow(a, 3) },
  { name: 'Pow constant exponent 2 (special path)', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.pow(a, 2) },
  { name: 'Pow constant exponent 0.5, positive base', ins: [{ shape: [3, 4], gen: 'pos' }], f: (b, [a]) => b.pow(a, 0.5) },
  { name: 'Pow constant exponent -1.5, positive base', ins: [{ shape: [2, 3], gen: 'pos' }], f: (b, [a]) => b.pow(a, -1.5) },
  { name: 'Pow tensor exponent [3,4]^[3,4]', ins: [{ shape: [3, 4], gen: 'pos' }, { shape: [3, 4] }], f: (b, [a, p]) => b.pow(a, p) },
  { name: 'Pow tensor exponent [3,4]^[4]', ins: [{ shape: [3, 4], gen: 'pos' }, { shape: [4] }], f: (b, [a, p]) => b.pow(a, p) },
  { name: 'Pow tensor exponent [4]^[3,1]', ins: [{ shape: [4], gen: 'pos' }, { shape: [3, 1] }], f: (b, [a, p]) => b.pow(a, p) },

  // ---------------------------------------------------------------- unary math and activations
  { name: 'Neg', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.neg(a) },
  { name: 'Sqrt', ins: [{ shape: [3, 4], gen: 'pos' }], f: (b, [a]) => b.sqrt(a) },
  { name: 'Reciprocal', ins: [{ shape: [3, 4], gen: 'away' }], f: (b, [a]) => b.reciprocal(a) },
  { name: 'Exp', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.exp(a) },
  { name: 'Log', ins: [{ shape: [3, 4], gen: 'pos' }], f: (b, [a]) => b.log(a) },
  { name: 'Relu', ins: [{ shape: [3, 4], gen: 'away' }], f: (b, [a]) => b.relu(a) },
  { name: 'Tanh', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.tanh(a) },
  { name: 'Sigmoid', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.sigmoid(a) },
  { name: 'Identity', ins: [{ shape: [3, 4] }], f: (b, [a]) => b.identity(a) },
  { name: 'Abs', ins: [{ shape: [3, 4], gen: 'away' }], f: (b, [a]) => b.op('Abs', [a]) },
  // ORT's CPU Erf kernel is float32 only: the check runs in float32. With h = 1e-2 the central
  // difference's truncation error (h²·max|erf'''|/6 ≈ 4e-5) and float32 rounding inside f divided
  // by 2h (~6e-8·√n / 2e-2 ≈ 1e-5) both stay well below the 1e-3 tolerance (measured: 3e-5, 1e-4).
  { name: 'Erf (float32)', dtype: 'float32', h: 1e-2, rtol: 1e-3, ins: [{ shape: [3, 4] }], f: (b, [a]) => b.erf(a) },
  { name: 'GELU via Erf (float32)', dtype: 'float32', h: 1e-2, rtol: 1e-3, ins: [{ shape: [2, 5] }], f: (b, [x]) => b.mul(b.mul(x, b.add(b.erf(b.mul(x, Math.SQRT1_2)), 1)), 0.5) },

  // ---------------------------------------------------------------- Softmax, LogSoftmax
  ...softmaxCases,

  // ---------------------------------------------------------------- reductions
  ...reduceCases,

  // ---------------------------------------------------------------- data movement
  { name: 'Reshape [2,3,4] -> [6,4]', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.reshape(x, [6, 4]) },
  { name: 'Reshape [2,3,4] -> [-1]', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.reshape(x, [-1]) },
  { name: 'Reshape [2,3,4] -> [0,-1]', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.reshape(x, [0, -1]) },
  { name: 'Reshape [2,3,4] -> [0,-1,2]', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.reshape(x, [0, -1, 2]) },
  { name: 'Transpose [2,3,4] perm [2,0,1]', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.transpose(x, [2, 0, 1]) },
  { name: 'Transpose [3,4] perm [1,0]', ins: [{ shape: [3, 4] }], f: (b, [x]) => b.transpose(x, [1, 0]) },
  { name: 'Concat axis 0 [2,3],[1,3]', ins: [{ shape: [2, 3] }, { shape: [1, 3] }], f: (b, xs) => b.concat(xs, 0) },
  { name: 'Concat axis 1 [2,1],[2,3],[2,2]', ins: [{ shape: [2, 1] }, { shape: [2, 3] }, { shape: [2, 2] }], f: (b, xs) => b.concat(xs, 1) },
  { name: 'Concat axis -1 [2,3,1],[2,3,2]', ins: [{ shape: [2, 3, 1] }, { shape: [2, 3, 2] }], f: (b, xs) => b.concat(xs, -1) },
  { name: 'Concat x with itself', ins: [{ shape: [2, 3] }], f: (b, [x]) => b.concat([x, x], 0) },
  { name: 'Split axis -1 [2,3,6] into 1,2,3, all used', ins: [{ shape: [2, 3, 6] }], f: (b, [x]) => { const [p, q, r] = b.split(x, [1, 2, 3], -1); return b.concat([b.mul(p, 2), b.mul(q, q), b.exp(r)], -1); } },
  { name: 'Split axis 0 [4,3] into 1,3, second unused', ins: [{ shape: [4, 3] }], f: (b, [x]) => b.mul(b.split(x, [1, 3], 0)[0], 3) },
  { name: 'Slice [4,5] rows 1:3', ins: [{ shape: [4, 5] }], f: (b, [x]) => b.slice(x, [1], [3], [0]) },
  { name: 'Slice [4,5] cols -3:-1 (negative)', ins: [{ shape: [4, 5] }], f: (b, [x]) => b.slice(x, [-3], [-1], [1]) },
  { name: 'Slice [4,5] axis -1 -2:1000 (end past the size)', ins: [{ shape: [4, 5] }], f: (b, [x]) => b.slice(x, [-2], [1000], [-1]) },
  { name: 'Slice [3,4,5] two axes', ins: [{ shape: [3, 4, 5] }], f: (b, [x]) => b.slice(x, [1, 0], [3, -2], [0, 2]) },
  { name: 'Gather axis 0, repeated indices', ins: [{ shape: [4, 3] }], f: (b, [x]) => b.gather(x, i64(b, [5], [2, 0, 2, 3, 2]), 0) },
  { name: 'Gather axis 1, scalar index', ins: [{ shape: [3, 4] }], f: (b, [x]) => b.gather(x, i64(b, [], [1]), 1) },
  { name: 'Gather axis 1, 2-D indices with repeats', ins: [{ shape: [2, 4, 3] }], f: (b, [x]) => b.gather(x, i64(b, [2, 2], [3, 1, 1, 0]), 1) },
  { name: 'Gather axis 0, negative index', ins: [{ shape: [4, 3] }], f: (b, [x]) => b.gather(x, i64(b, [3], [-1, 0, -1]), 0) },
  {
    name: 'Gather axis 0, int32 indices',
    ins: [{ shape: [4, 3] }],
    f: (b, [x]) => b.gather(x, b.constant('int32', [3], [1, 3, 1]), 0),
  },
  { name: 'Flatten [2,3,4] axis 2', ins: [{ shape: [2, 3, 4] }], f: (b, [x]) => b.op('Flatten', [x], { axis: aInt(2) }, { shapes: [[6, 4]] }) },
  { name: 'Squeeze [3,1,4] axis 1', ins: [{ shape: [3, 1, 4] }], f: (b, [x]) => b.squeeze(x, [1]) },
  { name: 'Squeeze [1,3,1] axes [0,-1]', ins: [{ shape: [1, 3, 1] }], f: (b, [x]) => b.squeeze(x, [0, -1]) },
  { name: 'Unsqueeze [3,4] axes [0,2]', ins: [{ shape: [3, 4] }], f: (b, [x]) => b.unsqueeze(x, [0, 2]) },
  { name: 'Unsqueeze [3] axis -1', ins: [{ shape: [3] }], f: (b, [x]) => b.unsqueeze(x, [-1]) },
  { name: 'Expand [3,1] -> [2,3,4]', ins: [{ shape: [3, 1] }], f: (b, [x]) => b.expand(x, b.ints([2, 3, 4]), [2, 3, 4]) },
  { name: 'Expand [4] -> [3,4]', ins: [{ shape: [4] }], f: (b, [x]) => b.expand(x, b.ints([3, 4]), [3, 4]) },
  { name: 'Expand [2,3] -> [2,3] (no-op)', ins: [{ shape: [2, 3] }], f: (b, [x]) => b.expand(x, b.ints([1, 3]), [2, 3]) },

  // ---------------------------------------------------------------- Clip, Where, Cast
  { name: 'Clip [-0.5, 0.5]', ins: [{ shape: [4, 5], gen: awayFrom([-0.5, 0.5]) }], f: (b, [x]) => b.clip(x, -0.5, 0.5) },
  { name: 'Clip max only 0.3', ins: [{ shape: [4, 5], gen: awayFrom([0.3]) }], f: (b, [x]) => b.clip(x, null, 0.3) },
  { name: 'Clip min only -0.2', ins: [{ shape: [4, 5], gen: awayFrom([-0.2]) }], f: (b, [x]) => b.clip(x, -0.2, null) },
  {
    name: 'Where [3,4] cond, [3,4] and [4] branches',
    ins: [{ shape: [3, 4] }, { shape: [4] }],
    f: (b, [a, q]) => b.where(b.cast(b.constant('float64', [3, 4], [1, 0, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1]), 'bool'), a, q),
  },
  {
    name: 'Where cond from Greater on a non-differentiable input, literal branch',
    ins: [{ shape: [3, 4] }, { shape: [3, 4], diff: false }],
    f: (b, [a, c]) => b.where(b.greater(c, 0), a, 0.25),
  },
  {
    name: 'Where [2,1,4] cond broadcasting both branches [3,1],[4]',
    ins: [{ shape: [3, 1] }, { shape: [4] }],
    f: (b, [a, q]) => b.where(b.cast(b.constant('float64', [2, 1, 4], [1, 0, 1, 0, 0, 0, 1, 1]), 'bool'), a, q),
  },
  // float64 -> float32 -> float64 is the identity up to float32 rounding of x (~6e-8|x|): the
  // function is linear, so a large step h = 0.1 costs no truncation error and makes that rounding
  // ~3e-7 of the step; hence rtol 1e-5.
  { name: 'Cast float64 -> float32 -> float64', h: 0.1, rtol: 1e-5, ins: [{ shape: [3, 4] }], f: (b, [x]) => b.cast(b.mul(b.cast(x, 'float32'), 1.5), 'float64') },
  // float32 graph: f32 -> f64 -> exp -> f32. Tolerance: float32 graph (see Erf).
  { name: 'Cast float32 -> float64 -> float32 (float32)', dtype: 'float32', h: 1e-2, rtol: 1e-3, ins: [{ shape: [3, 4] }], f: (b, [x]) => b.cast(b.exp(b.cast(x, 'float64')), 'float32') },

  // ---------------------------------------------------------------- LayerNormalization
  { name: 'LayerNormalization [3,5] axis -1, scale+bias', ins: [{ shape: [3, 5] }, { shape: [5] }, { shape: [5] }], f: (b, [x, s, c]) => b.layerNorm(x, s, c, 1e-5, -1) },
  { name: 'LayerNormalization [2,3,4] axis -2, scale+bias [3,4]', ins: [{ shape: [2, 3, 4] }, { shape: [3, 4] }, { shape: [3, 4] }], f: (b, [x, s, c]) => b.layerNorm(x, s, c, 1e-5, -2) },
  { name: 'LayerNormalization [2,3,4] axis -1, scale [4] bias [4]', ins: [{ shape: [2, 3, 4] }, { shape: [4] }, { shape: [4] }], f: (b, [x, s, c]) => b.layerNorm(x, s, c, 1e-3, -1) },

  // ---------------------------------------------------------------- compositions
  {
    name: 'cross-entropy by hand: -mean(sum(onehot(y) * logSoftmax(z), -1))',
    ins: [{ shape: [4, 5] }],
    f: (b, [z]) => crossEntropyByHand(b, z, i64(b, [4], [3, 0, 4, 3]), 5),
  },
  {
    name: 'linear + relu + cross-entropy',
    ins: [{ shape: [4, 3] }, { shape: [3, 5] }, { shape: [5] }],
    f: (b, [x, w, c]) => crossEntropyByHand(b, b.relu(b.add(b.matmul(x, w), c)), i64(b, [4], [1, 2, 0, 4]), 5),
  },
  {
    name: 'attention-like: softmax(q kT / 2) v',
    ins: [{ shape: [2, 3, 4] }, { shape: [2, 3, 4] }, { shape: [2, 3, 4] }],
    f: (b, [q, k, v]) => b.matmul(b.softmax(b.mul(b.matmul(q, b.transpose(k, [0, 2, 1])), 0.5), -1), v),
  },
  {
    name: 'LJ loss, tokens (static l)',
    ins: [{ shape: [2, 4, 6] }],
    f: (b, [f]) => ljLoss(b, f, { sigma: 1, n: 6, epsilon: 0.1, clampMax: 5 }, 'tokens'),
  },
  {
    name: 'LJ loss adaptive, tokens (static l)',
    ins: [{ shape: [2, 4, 6] }],
    f: (b, [f]) => ljLoss(b, f, { sigma: 0.5, n: 2, epsilon: 1, clampMax: 5, variant: 'adaptive' }, 'tokens'),
  },

  // ---------------------------------------------------------------- symbolic batch dim: run-time shape paths
  { name: 'symbolic: Mul [batch,4]*[4], ReduceMean axis 0', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }, { shape: [4] }], f: (b, [x, w]) => b.reduceMean(b.mul(x, w), [0], false) },
  { name: 'symbolic: ReduceMean all axes keepdims 1', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.reduceMean(b.tanh(x), null, true) },
  { name: 'symbolic: ReduceSum axis 1 keepdims 0', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.reduceSum(x, [1], false) },
  { name: 'symbolic: ReduceMax axis 1 keepdims 1', dims: { batch: 3 }, ins: [{ shape: ['batch', 4], gen: 'distinct' }], f: (b, [x]) => b.reduceMax(x, [1], true) },
  { name: 'symbolic: ReduceL2 axis 0 keepdims 0', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.reduceL2(x, [0], false) },
  { name: 'symbolic: Reshape [batch,4] -> [-1,2,2] -> [0,4]', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.reshape(b.mul(b.reshape(x, [-1, 2, 2]), b.reshape(x, [-1, 2, 2])), [0, 4]) },
  { name: 'symbolic: Squeeze/Unsqueeze', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.squeeze(b.exp(b.unsqueeze(x, [1])), [1]) },
  { name: 'symbolic: Expand [1,4] to Shape(x)', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }, { shape: [1, 4] }], f: (b, [x, w]) => b.mul(x, b.expand(w, b.shapeOf(x), x.shape)) },
  { name: 'symbolic: MatMul [batch,4]x[4,3] + Gemm', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }, { shape: [4, 3] }, { shape: [3, 2] }, { shape: [2] }], f: (b, [x, w, w2, c]) => b.gemm(b.tanh(b.matmul(x, w)), w2, c) },
  { name: 'symbolic: LayerNormalization + Softmax', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }, { shape: [4] }, { shape: [4] }], f: (b, [x, s, c]) => b.softmax(b.layerNorm(x, s, c), -1) },
  { name: 'symbolic: Gather axis 1', dims: { batch: 3 }, ins: [{ shape: ['batch', 5] }], f: (b, [x]) => b.gather(x, i64(b, [3], [4, 0, 4]), 1) },
  { name: 'symbolic: Concat axis 1, Slice axis 1', dims: { batch: 3 }, ins: [{ shape: ['batch', 2] }, { shape: ['batch', 3] }], f: (b, [x, y]) => b.slice(b.concat([x, y], 1), [1], [4], [1]) },
  { name: 'symbolic: Slice the whole batch axis and 1:3 of axis 1', dims: { batch: 3 }, ins: [{ shape: ['batch', 4] }], f: (b, [x]) => b.slice(x, [0, 1], [2 ** 62, 3], [0, 1]) },
  { name: 'symbolic: Transpose [batch,4,2]', dims: { batch: 3 }, ins: [{ shape: ['batch', 4, 2] }], f: (b, [x]) => b.transpose(x, [2, 0, 1]) },
  { name: 'symbolic: Add [batch,1,4]+[3,1]', dims: { batch: 2 }, ins: [{ shape: ['batch', 1, 4] }, { shape: [3, 1] }], f: (b, [x, y]) => b.add(x, y) },
  {
    name: 'symbolic: cross-entropy with labels [batch]',
    dims: { batch: 4 },
    ins: [{ shape: ['batch', 5] }, { shape: ['batch'], dtype: 'int64', data: [2, 2, 0, 4] }],
    f: (b, [z, y]) => crossEntropyByHand(b, z, y, 5),
  },
  {
    name: 'symbolic: LJ loss, batch particles',
    dims: { batch: 5 },
    ins: [{ shape: ['batch', 6] }],
    f: (b, [f]) => ljLoss(b, f, { sigma: 1, n: 6, epsilon: 0.1, clampMax: 5 }, 'batch'),
  },
];

describe('gradient rules: check_vjp table (onnxruntime-node)', function () {
  this.timeout(60000);
  it('case names are unique', () => {
    const names = CASES.map((c) => c.name);
    expect(new Set(names).size).to.equal(names.length);
  });
  for (const c of CASES) {
    it(c.name, async () => {
      await checkVjp(c);
    });
  }
});
