/**
 * GraphBuilder: typed value handles, op constructors, cached literal constants, scoped deterministic
 * names, seeded parameter initialisers, build-time shape checks, and serialisation to ModelProto.
 *
 *   const b = new GraphBuilder({ seed: 1 });
 *   const x = b.input('input', 'float32', ['batch', 784]);
 *   const h = b.scope('fc1', () => linear(b, x, 256));
 */
import { DEFAULT_IR_VERSION, DEFAULT_OPSET, DType, MAX_IR_VERSION, MAX_OPSET, TypedArray, dtypeCode, makeTensorProto, onnx, typedArrayFor } from '../onnx/proto';
import { Rng } from './rng';
import { SHAPE_INFER, OutInfo } from './shape-infer';
import { Attr, GraphBuildError, Node, Shape, Value, aFloat, aInt, aInts, numel, shapeStr } from './types';

export interface BuilderOptions {
  /** Seed for parameter initialisers. */
  seed?: number;
  opset?: number;
  irVersion?: number;
}

export interface Param {
  value: Value;
  init: Float32Array | Float64Array;
  /** Trainable parameters get gradients; others (e.g. frozen) are carried as-is. */
  trainable: boolean;
}

export interface NodeOptions {
  /** Number of outputs (default 1). */
  outputs?: number;
  domain?: string;
  /** Override inferred output shapes, for shapes only known at run time (e.g. Reshape to Shape(x)). */
  shapes?: Shape[];
  dtypes?: DType[];
}

export class GraphBuilder {
  readonly opset: number;
  readonly irVersion: number;
  readonly rng: Rng;
  readonly nodes: Node[] = [];
  readonly inputs: Value[] = [];
  readonly outputs: Value[] = [];
  readonly params: Param[] = [];
  readonly consts: { value: Value; data: TypedArray; dims: number[] }[] = [];
  private readonly constCache = new Map<string, Value>();
  private readonly names = new Set<string>();
  private readonly scopes: string[] = [];
  private counter = 0;

  constructor(opts: BuilderOptions = {}) {
    this.opset = opts.opset ?? DEFAULT_OPSET;
    this.irVersion = opts.irVersion ?? DEFAULT_IR_VERSION;
    if (this.opset > MAX_OPSET || this.opset < 13) throw new GraphBuildError(`opset ${this.opset} is not supported: use 13..${MAX_OPSET}`);
    if (this.irVersion > MAX_IR_VERSION) throw new GraphBuildError(`IR version ${this.irVersion} is above ${MAX_IR_VERSION}, which ORT 1.19 training refuses`);
    this.rng = new Rng(opts.seed ?? 0);
  }

  // ---------------------------------------------------------------- scopes and names

  /** Runs fn inside a named scope: parameters become `scope.name`, nodes `scope/Op_k`. */
  scope<T>(name: string | number, fn: () => T): T {
    this.scopes.push(String(name));
    try {
      return fn();
    } finally {
      this.scopes.pop();
    }
  }

  get scopePath(): string {
    return this.scopes.join('.');
  }

  private claim(name: string): string {
    if (this.names.has(name)) throw new GraphBuildError(`duplicate value name '${name}'`);
    this.names.add(name);
    return name;
  }

  private fresh(prefix: string): string {
    let name: string;
    do name = `${prefix}_${this.counter++}`;
    while (this.names.has(name));
    return this.claim(name);
  }

  // ---------------------------------------------------------------- graph inputs, params, constants

  input(name: string, dtype: DType, shape: Shape): Value {
    const v = new Value(this.claim(name), dtype, shape, null);
    this.inputs.push(v);
    return v;
  }

  /** Marks a value as a graph output, renaming it through an Identity when a name is given. */
  output(v: Value, name?: string): Value {
    let out = v;
    if (name && name !== v.name) out = this.node('Identity', [v], {}, { outputs: 1 }, name)[0];
    this.outputs.push(out);
    return out;
  }

  /**
   * A parameter with a seeded initialiser. `init` gets the RNG and the element count; parameters
   * draw from the builder RNG in creation order, so the same recipe gives the same weights.
   */
  param(localName: string, shape: number[], init: (rng: Rng, n: number) => Float32Array, trainable = true): Value {
    const name = this.scopePath ? `${this.scopePath}.${localName}` : localName;
    const n = numel(shape)!;
    const data = init(this.rng, n);
    if (data.length !== n) throw new GraphBuildError(`initialiser of ${name} made ${data.length} values for shape ${shapeStr(shape)}`);
    const v = new Value(this.claim(name), 'float32', shape, null);
    this.params.push({ value: v, init: data, trainable });
    return v;
  }

  /** A cached literal constant (deduplicated by dtype, shape and bytes). */
  constant(dtype: DType, dims: number[], values: ArrayLike<number> | ArrayLike<bigint>): Value {
    const data = typedArrayFor(dtype, values.length);
    if (dtype === 'int64') (data as BigInt64Array).set(Array.from(values as ArrayLike<number>, (x) => BigInt(x)));
    else (data as Float32Array).set(values as ArrayLike<number>);
    const key = `${dtype}|${dims.join(',')}|${Buffer.from(data.buffer).toString('base64')}`;
    const hit = this.constCache.get(key);
    if (hit) return hit;
    const v = new Value(this.fresh('const'), dtype, dims, null, { dtype, dims, data });
    this.consts.push({ value: v, data, dims });
    this.constCache.set(key, v);
    return v;
  }

  scalar(x: number, dtype: DType = 'float32'): Value {
    return this.constant(dtype, [], [x]);
  }

  ints(xs: number[]): Value {
    return this.constant('int64', [xs.length], xs);
  }

  // ---------------------------------------------------------------- generic node

  /** Emits a node, inferring (or taking) output shapes; shape errors name the scope and op. */
  node(opType: string, inputs: (Value | null)[], attrs: Record<string, Attr> = {}, opts: NodeOptions = {}, outName?: string): Value[] {
    const nOut = opts.outputs ?? 1;
    const where = `${this.scopePath || '<root>'}/${opType}`;
    let infos: OutInfo[];
    if (opts.shapes) {
      infos = opts.shapes.map((s, i) => ({ shape: s, dtype: opts.dtypes?.[i] ?? inputs.find((v) => v)!.dtype }));
    } else {
      const fn = SHAPE_INFER[opType];
      if (!fn) throw new GraphBuildError(`${where}: no shape inference for op ${opType}; pass explicit shapes`);
      try {
        infos = fn(inputs, attrs, nOut);
      } catch (e) {
        const ins = inputs.map((v) => (v ? `${v.name}${shapeStr(v.shape)}` : '<none>')).join(', ');
        throw new GraphBuildError(`${where}: ${(e as Error).message} (inputs: ${ins})`);
      }
    }
    const id = this.counter;
    const prefix = this.scopePath ? `${this.scopePath}/${opType}` : opType;
    const nodeName = this.fresh(prefix);
    const node: Node = { opType, domain: opts.domain ?? '', name: nodeName, scope: this.scopePath, inputs, outputs: [], attrs };
    for (let i = 0; i < nOut; i++) {
      const name = outName && i === 0 ? this.claim(outName) : this.claim(`${nodeName}_out${i}`);
      node.outputs.push(new Value(name, opts.dtypes?.[i] ?? infos[i].dtype, infos[i].shape, node));
    }
    void id;
    this.nodes.push(node);
    return node.outputs;
  }

  op(opType: string, inputs: (Value | null)[], attrs: Record<string, Attr> = {}, opts: NodeOptions = {}): Value {
    return this.node(opType, inputs, attrs, opts)[0];
  }

  // ---------------------------------------------------------------- op constructors

  add(a: Value, b: Value | number): Value { return this.op('Add', [a, this.lit(b, a)]); }
  sub(a: Value | number, b: Value | number): Value { const [x, y] = this.pair(a, b); return this.op('Sub', [x, y]); }
  mul(a: Value, b: Value | number): Value { return this.op('Mul', [a, this.lit(b, a)]); }
  div(a: Value | number, b: Value | number): Value { const [x, y] = this.pair(a, b); return this.op('Div', [x, y]); }
  pow(a: Value, b: Value | number): Value { return this.op('Pow', [a, this.lit(b, a)]); }
  max(a: Value, b: Value | number): Value { return this.op('Max', [a, this.lit(b, a)]); }
  min(a: Value, b: Value | number): Value { return this.op('Min', [a, this.lit(b, a)]); }
  neg(x: Value): Value { return this.op('Neg', [x]); }
  sqrt(x: Value): Value { return this.op('Sqrt', [x]); }
  reciprocal(x: Value): Value { return this.op('Reciprocal', [x]); }
  exp(x: Value): Value { return this.op('Exp', [x]); }
  log(x: Value): Value { return this.op('Log', [x]); }
  relu(x: Value): Value { return this.op('Relu', [x]); }
  erf(x: Value): Value { return this.op('Erf', [x]); }
  tanh(x: Value): Value { return this.op('Tanh', [x]); }
  sigmoid(x: Value): Value { return this.op('Sigmoid', [x]); }
  identity(x: Value): Value { return this.op('Identity', [x]); }
  matmul(a: Value, b: Value): Value { return this.op('MatMul', [a, b]); }
  equal(a: Value, b: Value | number): Value { return this.op('Equal', [a, this.lit(b, a)]); }
  greater(a: Value, b: Value | number): Value { return this.op('Greater', [a, this.lit(b, a)]); }
  less(a: Value, b: Value | number): Value { return this.op('Less', [a, this.lit(b, a)]); }
  where(c: Value, a: Value | number, b: Value | number): Value {
    const ref = typeof a === 'number' ? (b as Value) : a;
    return this.op('Where', [c, this.lit(a, ref), this.lit(b, ref)]);
  }
  cast(x: Value, to: DType): Value { return this.op('Cast', [x], { to: aInt(dtypeCode(to)) }); }
  shapeOf(x: Value): Value { return this.op('Shape', [x]); }

  gemm(a: Value, b: Value, c: Value | null, o: { transA?: boolean; transB?: boolean; alpha?: number; beta?: number } = {}): Value {
    const attrs: Record<string, Attr> = {};
    if (o.alpha !== undefined && o.alpha !== 1) attrs.alpha = aFloat(o.alpha);
    if (o.beta !== undefined && o.beta !== 1) attrs.beta = aFloat(o.beta);
    if (o.transA) attrs.transA = aInt(1);
    if (o.transB) attrs.transB = aInt(1);
    return this.op('Gemm', c ? [a, b, c] : [a, b], attrs);
  }

  softmax(x: Value, axis = -1): Value { return this.op('Softmax', [x], { axis: aInt(axis) }); }
  logSoftmax(x: Value, axis = -1): Value { return this.op('LogSoftmax', [x], { axis: aInt(axis) }); }

  /** Reductions take axes as an attribute up to opset 17 (ReduceSum: input since 13). */
  reduce(op: 'ReduceSum' | 'ReduceMean' | 'ReduceMax' | 'ReduceL2' | 'ReduceMin', x: Value, axes: number[] | null, keepdims: boolean): Value {
    const attrs: Record<string, Attr> = { keepdims: aInt(keepdims ? 1 : 0) };
    const axesAsInput = op === 'ReduceSum' || this.opset >= 18;
    if (axesAsInput) return this.op(op, axes && axes.length ? [x, this.ints(axes)] : [x], attrs);
    if (axes && axes.length) attrs.axes = aInts(axes);
    return this.op(op, [x], attrs);
  }
  reduceSum(x: Value, axes: number[] | null, keepdims = false): Value { return this.reduce('ReduceSum', x, axes, keepdims); }
  reduceMean(x: Value, axes: number[] | null, keepdims = false): Value { return this.reduce('ReduceMean', x, axes, keepdims); }
  reduceMax(x: Value, axes: number[] | null, keepdims = false): Value { return this.reduce('ReduceMax', x, axes, keepdims); }
  reduceL2(x: Value, axes: number[] | null, keepdims = false): Value { return this.reduce('ReduceL2', x, axes, keepdims); }

  reshape(x: Value, shape: number[] | Value, outShape?: Shape): Value {
    if (Array.isArray(shape)) return this.op('Reshape', [x, this.ints(shape)]);
    if (!outShape) throw new GraphBuildError(`${this.scopePath}/Reshape: a run-time target shape needs an explicit output shape`);
    return this.op('Reshape', [x, shape], {}, { shapes: [outShape] });
  }
  transpose(x: Value, perm: number[]): Value { return this.op('Transpose', [x], { perm: aInts(perm) }); }
  concat(xs: Value[], axis: number): Value { return this.op('Concat', xs, { axis: aInt(axis) }); }
  slice(x: Value, starts: number[], ends: number[], axes: number[]): Value {
    return this.op('Slice', [x, this.ints(starts), this.ints(ends), this.ints(axes)]);
  }
  /** Splits x along axis into pieces of the given sizes. */
  split(x: Value, sizes: number[], axis: number): Value[] {
    return this.node('Split', [x, this.ints(sizes)], { axis: aInt(axis) }, { outputs: sizes.length });
  }
  gather(x: Value, indices: Value, axis = 0): Value { return this.op('Gather', [x, indices], { axis: aInt(axis) }); }
  squeeze(x: Value, axes: number[]): Value { return this.op('Squeeze', [x, this.ints(axes)]); }
  unsqueeze(x: Value, axes: number[]): Value { return this.op('Unsqueeze', [x, this.ints(axes)]); }
  expand(x: Value, shape: Value, outShape: Shape): Value { return this.op('Expand', [x, shape], {}, { shapes: [outShape] }); }
  /** Clip to [lo, hi]; null leaves that side open (the input is omitted, as ONNX allows). */
  clip(x: Value, lo: number | null, hi: number | null): Value {
    const ins: (Value | null)[] = [x, lo === null ? null : this.scalar(lo, x.dtype)];
    if (hi !== null) ins.push(this.scalar(hi, x.dtype));
    return this.op('Clip', ins);
  }
  layerNorm(x: Value, scale: Value, bias: Value, epsilon = 1e-5, axis = -1): Value {
    return this.op('LayerNormalization', [x, scale, bias], { axis: aInt(axis), epsilon: aFloat(epsilon) });
  }
  oneHot(indices: Value, depth: number, dtype: DType = 'float32'): Value {
    return this.op('OneHot', [indices, this.ints([depth]), this.constant(dtype, [2], [0, 1])], { axis: aInt(-1) });
  }

  private lit(v: Value | number, like: Value): Value {
    return typeof v === 'number' ? this.scalar(v, like.dtype) : v;
  }
  private pair(a: Value | number, b: Value | number): [Value, Value] {
    if (typeof a === 'number' && typeof b === 'number') throw new GraphBuildError('at least one operand must be a value');
    const ref = (typeof a === 'number' ? b : a) as Value;
    return [this.lit(a, ref), this.lit(b, ref)];
  }

  // ---------------------------------------------------------------- serialisation

  /**
   * Builds the ModelProto. Parameters are initializers by default; `paramsAsInputs` makes them graph
   * inputs instead (train-step and ORT training graphs feed them each step).
   */
  toModel(opts: { name?: string; paramsAsInputs?: boolean; extraOpsets?: Record<string, number>; docString?: string } = {}): onnx.ModelProto {
    const vi = (v: Value) => valueInfo(v);
    // Constants no node or output uses (e.g. left by nodes that backward() pruned) are not written.
    const used = new Set<Value>(this.outputs);
    for (const n of this.nodes) for (const v of n.inputs) if (v) used.add(v);
    const inits: onnx.ITensorProto[] = this.consts.filter((c) => used.has(c.value)).map((c) => makeTensorProto(c.value.name, c.value.dtype, c.dims, c.data));
    const paramInputs: onnx.IValueInfoProto[] = [];
    for (const p of this.params) {
      if (opts.paramsAsInputs) paramInputs.push(vi(p.value));
      else inits.push(makeTensorProto(p.value.name, 'float32', p.value.shape as number[], p.init));
    }
    const graph = onnx.GraphProto.create({
      name: opts.name ?? 'main',
      node: this.nodes.map(nodeProto),
      input: [...this.inputs.map(vi), ...paramInputs],
      output: this.outputs.map(vi),
      initializer: inits,
    });
    const opsets = [onnx.OperatorSetIdProto.create({ domain: '', version: this.opset })];
    for (const [d, v] of Object.entries(opts.extraOpsets ?? {}).sort()) opsets.push(onnx.OperatorSetIdProto.create({ domain: d, version: v }));
    return onnx.ModelProto.create({
      irVersion: this.irVersion,
      opsetImport: opsets,
      producerName: 'ljtrain',
      producerVersion: '0.1.0',
      graph,
      docString: opts.docString ?? '',
    });
  }
}

export function valueInfo(v: Value): onnx.IValueInfoProto {
  return onnx.ValueInfoProto.create({
    name: v.name,
    type: onnx.TypeProto.create({
      tensorType: onnx.TypeProto.Tensor.create({
        elemType: dtypeCode(v.dtype),
        shape: onnx.TensorShapeProto.create({
          dim: v.shape.map((d) => (typeof d === 'number' ? { dimValue: d } : { dimParam: d })),
        }),
      }),
    }),
  });
}

function nodeProto(n: Node): onnx.INodeProto {
  // Sorted attribute order: the same recipe gives the same bytes.
  const attribute = Object.keys(n.attrs).sort().map((k) => attrProto(k, n.attrs[k]));
  return onnx.NodeProto.create({
    opType: n.opType,
    domain: n.domain,
    name: n.name,
    input: n.inputs.map((v) => (v ? v.name : '')),
    output: n.outputs.map((v) => v.name),
    attribute,
  });
}

function attrProto(name: string, a: Attr): onnx.IAttributeProto {
  const T = onnx.AttributeProto.AttributeType;
  switch (a.kind) {
    case 'int': return { name, type: T.INT, i: a.v };
    case 'float': return { name, type: T.FLOAT, f: a.v };
    case 'ints': return { name, type: T.INTS, ints: a.v };
    case 'floats': return { name, type: T.FLOATS, floats: a.v };
    case 'string': return { name, type: T.STRING, s: Buffer.from(a.v) };
    case 'tensor': return { name, type: T.TENSOR, t: makeTensorProto('', a.dtype, a.dims, a.data) };
  }
}
