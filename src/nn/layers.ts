/** Layers as graph fragments: linear, layer norm, GELU, multi-head self-attention, MLP block. */
import type { GraphBuilder } from '../graph/builder';
import type { Rng } from '../graph/rng';
import { GraphBuildError, Value, shapeStr } from '../graph/types';

export type Init = (rng: Rng, n: number) => Float32Array;

/** U(-a, a): torch's default Linear/Conv init is a = 1/sqrt(fan_in) (kaiming_uniform with a=sqrt(5)). */
export const uniform = (a: number): Init => (rng, n) => Float32Array.from({ length: n }, () => rng.uniform(-a, a));
/** Normal(0, std) truncated to ±2 std, as timm's trunc_normal_ for ViT weights. */
export const truncNormal = (std: number): Init => (rng, n) =>
  Float32Array.from({ length: n }, () => {
    let z: number;
    do z = rng.normal();
    while (Math.abs(z) > 2);
    return z * std;
  });
export const fill = (v: number): Init => (_rng, n) => new Float32Array(n).fill(v);

export interface LinearOptions {
  bias?: boolean;
  /** 'torch' (kaiming-uniform weights and bias) or 'vit' (trunc-normal 0.02 weights, zero bias). */
  init?: 'torch' | 'vit';
}

/** y = x W + b over the last axis; W is stored [in, out] so the graph needs no transpose. */
export function linear(b: GraphBuilder, x: Value, out: number, opts: LinearOptions = {}): Value {
  const fanIn = x.shape[x.rank - 1];
  if (typeof fanIn !== 'number') throw new GraphBuildError(`${b.scopePath}: linear needs a static last dimension, got ${shapeStr(x.shape)}`);
  const vit = opts.init === 'vit';
  const bound = 1 / Math.sqrt(fanIn);
  const w = b.param('weight', [fanIn, out], vit ? truncNormal(0.02) : uniform(bound));
  let y = b.matmul(x, w);
  if (opts.bias !== false) y = b.add(y, b.param('bias', [out], vit ? fill(0) : uniform(bound)));
  return y;
}

export function layerNorm(b: GraphBuilder, x: Value, eps = 1e-5): Value {
  const d = x.shape[x.rank - 1] as number;
  return b.layerNorm(x, b.param('weight', [d], fill(1)), b.param('bias', [d], fill(0)), eps);
}

/** Exact GELU: 0.5 x (1 + erf(x / sqrt 2)) (opset 17 has no Gelu op; ORT fuses this pattern). */
export function gelu(b: GraphBuilder, x: Value): Value {
  return b.mul(b.mul(x, b.add(b.erf(b.mul(x, Math.SQRT1_2)), 1)), 0.5);
}

/** Multi-head self-attention on (b, l, d) tokens: softmax(q kᵀ / sqrt(hd)) v, one fused qkv projection. */
export function selfAttention(b: GraphBuilder, x: Value, heads: number): Value {
  const [, L, D] = x.shape;
  if (typeof L !== 'number' || typeof D !== 'number') throw new GraphBuildError(`${b.scopePath}: attention needs static (l, d), got ${shapeStr(x.shape)}`);
  if (D % heads !== 0) throw new GraphBuildError(`${b.scopePath}: dim ${D} is not divisible by heads ${heads}`);
  const hd = D / heads;
  const qkv = b.scope('qkv', () => linear(b, x, 3 * D, { init: 'vit' }));
  // Split (its gradient is one Concat) rather than Slice (a Pad per piece plus a Sum).
  const [q0, k0, v0] = b.split(qkv, [D, D, D], -1).map((t) => b.reshape(t, [-1, L, heads, hd]));
  const q = b.transpose(b.mul(q0, 1 / Math.sqrt(hd)), [0, 2, 1, 3]); // (b, h, l, hd)
  const kT = b.transpose(k0, [0, 2, 3, 1]); // (b, h, hd, l)
  const v = b.transpose(v0, [0, 2, 1, 3]);
  const attn = b.softmax(b.matmul(q, kT), -1);
  const o = b.reshape(b.transpose(b.matmul(attn, v), [0, 2, 1, 3]), [-1, L, D]);
  return b.scope('proj', () => linear(b, o, D, { init: 'vit' }));
}

export function mlpBlock(b: GraphBuilder, x: Value, hidden: number): Value {
  const D = x.shape[x.rank - 1] as number;
  const h = b.scope('fc1', () => linear(b, x, hidden, { init: 'vit' }));
  return b.scope('fc2', () => linear(b, gelu(b, h), D, { init: 'vit' }));
}
