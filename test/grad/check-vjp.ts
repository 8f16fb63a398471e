/**
 * Gradient check in the manner of jax `check_vjp`, run through onnxruntime-node.
 *
 *   L(x) = ReduceSum(f(x) * v)          v: fixed seeded random constant (fed as an input)
 *   for each differentiable input x_i and a seeded random direction u:
 *     (L(x + h u) − L(x − h u)) / 2h   ≈   <dL/dx_i, u>      (dL/dx_i from backward())
 *
 * The directional derivative is formed with the perturbation actually fed, (x⁺ − x⁻)/2h after
 * rounding to the input dtype, so float32 inputs do not add rounding of x ± h u to the error.
 * float32 outputs are cast to float64 before the weighted sum, so the loss' own summation adds no
 * float32 rounding either; what remains is the rounding inside f itself.
 */
import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { Rng } from '../../src/graph/rng';
import { Shape, Value } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { DType, TypedArray, typedArrayFor } from '../../src/onnx/proto';
import { Feed, openGraph } from '../helpers/run';

/** How to draw an input's values. */
export type Gen =
  | 'normal' // N(0, 1)
  | 'pos' // U(0.5, 2): Log, Sqrt, Pow base, divisors
  | 'away' // |x| in [0.2, 1.5], random sign: Relu, Div denominators, Reciprocal
  | 'distinct' // a shuffled grid with gaps of 0.1: ReduceMax, Max/Min without ties
  | ((rng: Rng, n: number) => number[]);

export interface InSpec {
  shape: Shape;
  /** Defaults to the case's dtype. */
  dtype?: DType;
  gen?: Gen;
  /** Fixed values (int64 indices, masks ...). */
  data?: number[];
  /** Differentiable input (default: true for float inputs). */
  diff?: boolean;
}

export interface VjpCase {
  name: string;
  /** Dtype of the float inputs (default float64). */
  dtype?: DType;
  ins: InSpec[];
  f: (b: GraphBuilder, xs: Value[]) => Value;
  /** Concrete sizes of symbolic dims used in the input shapes. */
  dims?: Record<string, number>;
  /** Concrete shape of f's output, needed only when it has symbols not in `dims`. */
  outDims?: number[];
  /** Relative tolerance (default 1e-6 for float64 graphs); a looser one must say why. */
  rtol?: number;
  /** Step of the central difference (default 1e-5 for float64, 1e-3 for float32). */
  h?: number;
  opset?: number;
}

export interface VjpResult {
  input: number;
  fd: number;
  analytic: number;
  scale: number;
  err: number;
}

function hashName(s: string): number {
  let h = 2166136261;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 16777619) >>> 0;
  return h;
}

function draw(rng: Rng, gen: Gen, n: number): number[] {
  if (typeof gen === 'function') return gen(rng, n);
  switch (gen) {
    case 'normal':
      return Array.from({ length: n }, () => rng.normal());
    case 'pos':
      return Array.from({ length: n }, () => rng.uniform(0.5, 2));
    case 'away':
      return Array.from({ length: n }, () => (rng.next() < 0.5 ? -1 : 1) * rng.uniform(0.2, 1.5));
    case 'distinct': {
      const p = rng.permutation(n);
      return Array.from(p, (k) => (k - Math.floor(n / 2)) * 0.1 + 0.03);
    }
  }
}

function concrete(shape: Shape, dims: Record<string, number>, what: string): number[] {
  return shape.map((d) => {
    if (typeof d === 'number') return d;
    if (!(d in dims)) throw new Error(`${what}: no concrete size for symbolic dim '${d}'`);
    return dims[d];
  });
}

function fill(dtype: DType, values: number[]): TypedArray {
  const a = typedArrayFor(dtype, values.length);
  if (dtype === 'int64') (a as BigInt64Array).set(values.map((x) => BigInt(x)));
  else (a as Float64Array).set(values);
  return a;
}

/** Runs the check for one case; returns one result per differentiable input (throws on a failure). */
export async function checkVjp(c: VjpCase): Promise<VjpResult[]> {
  const dtype = c.dtype ?? 'float64';
  const rng = new Rng(hashName(c.name));
  const dims = c.dims ?? {};
  // VJP_OPSET=18 (etc.) reruns the whole table at another opset; VJP_VERBOSE=1 prints every error.
  const b = new GraphBuilder({ seed: 0, opset: c.opset ?? (process.env.VJP_OPSET ? Number(process.env.VJP_OPSET) : undefined) });

  const specs = c.ins.map((s) => ({ ...s, dtype: s.dtype ?? dtype }));
  const xs = specs.map((s, i) => b.input(`x${i}`, s.dtype, s.shape));
  const isDiff = specs.map((s) => (s.diff ?? (s.dtype === 'float32' || s.dtype === 'float64')));
  const y = c.f(b, xs);
  const yDims = c.outDims ?? concrete(y.shape, dims, `${c.name}: output ${y.name}`);
  const y64 = y.dtype === 'float64' ? y : b.cast(y, 'float64');
  const v = b.input('v', 'float64', y.shape);
  const loss = b.reduceSum(b.mul(y64, v), null, false);
  b.output(loss, 'loss');
  const wrt = xs.filter((_, i) => isDiff[i]);
  const grads = backward(b, loss, wrt);
  grads.forEach((g, k) => {
    if (!g) throw new Error(`${c.name}: backward gave no gradient for ${wrt[k].name}`);
    b.output(g, `grad_${k}`);
  });

  // Base point, weights v, directions u.
  const feedDims = specs.map((s, i) => concrete(s.shape, dims, `${c.name}: input ${i}`));
  const base = specs.map((s, i) => {
    const n = feedDims[i].reduce((p, q) => p * q, 1);
    const vals = s.data ?? draw(rng, s.gen ?? 'normal', n);
    if (vals.length !== n) throw new Error(`${c.name}: input ${i} has ${vals.length} values for [${feedDims[i]}]`);
    return fill(s.dtype, vals);
  });
  const vData = fill('float64', draw(rng, 'normal', yDims.reduce((p, q) => p * q, 1)));

  // float64 graphs run at 'basic' (see RunOptions.level: ORT's MatMul+Transpose fusion has no
  // double kernel); float32 graphs at 'all', as the trainer runs them.
  const run = await openGraph(b, { level: dtype === 'float64' ? 'basic' : 'all' });
  const feeds = (xsData: TypedArray[]) => {
    const m = new Map<Value, Feed>();
    xs.forEach((x, i) => m.set(x, { data: xsData[i], dims: feedDims[i] }));
    m.set(v, { data: vData, dims: yDims });
    return m;
  };
  const out0 = await run(feeds(base));
  expect(Array.from(out0.loss.dims), `${c.name}: loss shape`).to.deep.equal([]);

  const h = c.h ?? (dtype === 'float64' ? 1e-5 : 1e-3);
  const rtol = c.rtol ?? (dtype === 'float64' ? 1e-6 : 1e-3);
  const results: VjpResult[] = [];
  let k = 0;
  for (let i = 0; i < xs.length; i++) {
    if (!isDiff[i]) continue;
    const gT = out0[`grad_${k}`];
    expect(Array.from(gT.dims), `${c.name}: shape of the gradient of input ${i}`).to.deep.equal(feedDims[i]);
    const g = Array.from(gT.data as Float64Array, Number);
    const gNorm = Math.sqrt(g.reduce((p, q) => p + q * q, 0));
    expect(g.every(Number.isFinite), `${c.name}: gradient of input ${i} is finite`).to.equal(true);
    expect(gNorm, `${c.name}: gradient of input ${i} is not all zero`).to.be.greaterThan(0);

    const x = Array.from(base[i] as Float64Array, Number);
    const u = draw(rng, 'normal', x.length);
    const xp = fill(specs[i].dtype, x.map((q, j) => q + h * u[j]));
    const xm = fill(specs[i].dtype, x.map((q, j) => q - h * u[j]));
    const lp = Number((await run(feeds(base.map((d, j) => (j === i ? xp : d))))).loss.data[0]);
    const lm = Number((await run(feeds(base.map((d, j) => (j === i ? xm : d))))).loss.data[0]);
    const fd = (lp - lm) / (2 * h);
    let analytic = 0;
    for (let j = 0; j < g.length; j++) analytic += (g[j] * (Number(xp[j]) - Number(xm[j]))) / (2 * h);
    // |<g, u>| is of order ‖g‖ for u ~ N(0, I); taking ‖g‖ as the floor of the scale keeps an
    // accidentally small <g, u> from demanding more than the arithmetic can give.
    const scale = Math.max(Math.abs(analytic), gNorm);
    const err = Math.abs(fd - analytic) / scale;
    results.push({ input: i, fd, analytic, scale, err });
    if (process.env.VJP_VERBOSE) console.log(`      ${c.name} | input ${i} | rel err ${err.toExponential(2)} (rtol ${rtol})`);
    expect(err, `${c.name}: input ${i}: finite difference ${fd} vs <grad, u> ${analytic} (rel err ${err.toExponential(2)}, rtol ${rtol})`).to.be.at.most(rtol);
    k++;
  }
  return results;
}
