import type { DType, TypedArray } from '../onnx/proto';

/** A dimension: a known size, or a symbolic name such as 'batch'. */
export type Dim = number | string;
export type Shape = Dim[];

/** Node attributes, tagged so ints and floats stay distinct in the emitted proto. */
export type Attr =
  | { kind: 'int'; v: number }
  | { kind: 'float'; v: number }
  | { kind: 'ints'; v: number[] }
  | { kind: 'floats'; v: number[] }
  | { kind: 'string'; v: string }
  | { kind: 'tensor'; dtype: DType; dims: number[]; data: TypedArray };

export const aInt = (v: number): Attr => ({ kind: 'int', v });
export const aFloat = (v: number): Attr => ({ kind: 'float', v });
export const aInts = (v: number[]): Attr => ({ kind: 'ints', v });
export const aFloats = (v: number[]): Attr => ({ kind: 'floats', v });
export const aStr = (v: string): Attr => ({ kind: 'string', v });

/** Constant data known at build time (initialisers made by the builder, parameters excluded). */
export interface ConstData {
  dtype: DType;
  dims: number[];
  data: TypedArray;
}

/** A value in the graph: a graph input, an initializer, or a node output. */
export class Value {
  constructor(
    readonly name: string,
    readonly dtype: DType,
    readonly shape: Shape,
    /** The node producing it; null for graph inputs and initializers. */
    readonly producer: Node | null,
    /** Build-time data for constants (lets shape inference read Reshape targets, axes ...). */
    readonly constData: ConstData | null = null,
  ) {}

  get rank(): number {
    return this.shape.length;
  }

  toString(): string {
    return `${this.name}: ${this.dtype}[${this.shape.join(',')}]`;
  }
}

export interface Node {
  opType: string;
  domain: string;
  name: string;
  /** Scope path at creation, e.g. 'blocks.0.attn', for error messages. */
  scope: string;
  /** null marks an omitted optional input (emitted as ''). */
  inputs: (Value | null)[];
  outputs: Value[];
  attrs: Record<string, Attr>;
}

/** Error raised while building: names the scope and the op so the user can find the layer. */
export class GraphBuildError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'GraphBuildError';
  }
}

export function numel(shape: Shape): number | null {
  let n = 1;
  for (const d of shape) {
    if (typeof d !== 'number') return null;
    n *= d;
  }
  return n;
}

export function shapeStr(s: Shape): string {
  return `[${s.join(',')}]`;
}
