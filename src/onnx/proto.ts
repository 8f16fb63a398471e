/**
 * ONNX protobuf types and helpers over the protobufjs code generated from the official onnx.proto
 * (see tools/gen-onnx-proto.sh for the source and version).
 */
import * as fs from 'node:fs';
// eslint-disable-next-line @typescript-eslint/no-var-requires
import { onnx } from './generated/onnx-proto';

export { onnx };

/** Highest ai.onnx opset this tool emits: ORT 1.19's training runtime refuses 22+. */
export const MAX_OPSET = 21;
/** Highest IR version this tool emits: ORT 1.19 refuses IR 11. */
export const MAX_IR_VERSION = 10;
export const DEFAULT_OPSET = 17;
/** IR 8 is what opset 17 came with (onnx 1.12), and what Debian's onnx checker accepts. */
export const DEFAULT_IR_VERSION = 8;

export type DType = 'float32' | 'float64' | 'int64' | 'int32' | 'bool';

const DTYPE_CODE: Record<DType, number> = {
  float32: onnx.TensorProto.DataType.FLOAT,
  float64: onnx.TensorProto.DataType.DOUBLE,
  int64: onnx.TensorProto.DataType.INT64,
  int32: onnx.TensorProto.DataType.INT32,
  bool: onnx.TensorProto.DataType.BOOL,
};

export function dtypeCode(d: DType): number {
  return DTYPE_CODE[d];
}

export function dtypeFromCode(code: number): DType {
  for (const [k, v] of Object.entries(DTYPE_CODE)) if (v === code) return k as DType;
  throw new Error(`unsupported ONNX tensor data type ${code}`);
}

export function isFloat(d: DType): boolean {
  return d === 'float32' || d === 'float64';
}

/** Typed array for a dtype. bool is stored as Uint8Array (one byte per element, as ONNX raw_data). */
export type TypedArray = Float32Array | Float64Array | BigInt64Array | Int32Array | Uint8Array;

export function typedArrayFor(d: DType, n: number): TypedArray {
  switch (d) {
    case 'float32': return new Float32Array(n);
    case 'float64': return new Float64Array(n);
    case 'int64': return new BigInt64Array(n);
    case 'int32': return new Int32Array(n);
    case 'bool': return new Uint8Array(n);
  }
}

/** Little-endian raw bytes of a typed array (this tool only runs on little-endian hosts, as ORT does). */
export function rawBytes(a: TypedArray): Uint8Array {
  return new Uint8Array(a.buffer, a.byteOffset, a.byteLength).slice();
}

export function makeTensorProto(name: string, dtype: DType, dims: number[], data: TypedArray): onnx.TensorProto {
  const n = dims.reduce((p, q) => p * q, 1);
  if (data.length !== n) throw new Error(`tensor ${name}: ${data.length} values for shape [${dims}]`);
  return onnx.TensorProto.create({ name, dims, dataType: dtypeCode(dtype), rawData: rawBytes(data) });
}

/** Decodes a TensorProto (raw_data or typed fields) into a typed array. */
export function tensorProtoData(t: onnx.ITensorProto): { dtype: DType; dims: number[]; data: TypedArray } {
  const dtype = dtypeFromCode(t.dataType ?? 0);
  const dims = (t.dims ?? []).map(Number);
  const n = dims.reduce((p, q) => p * q, 1);
  const out = typedArrayFor(dtype, n);
  if (t.rawData && t.rawData.length > 0) {
    const bytes = new Uint8Array(out.buffer);
    if (t.rawData.length !== bytes.length) throw new Error(`tensor ${t.name}: raw_data has ${t.rawData.length} bytes, shape [${dims}] needs ${bytes.length}`);
    bytes.set(t.rawData);
  } else if (dtype === 'float32' && t.floatData?.length) (out as Float32Array).set(t.floatData as number[]);
  else if (dtype === 'float64' && t.doubleData?.length) (out as Float64Array).set(t.doubleData as number[]);
  else if (dtype === 'int64' && t.int64Data?.length) (out as BigInt64Array).set((t.int64Data as number[]).map((v) => BigInt(v)));
  else if ((dtype === 'int32' || dtype === 'bool') && t.int32Data?.length) (out as Int32Array).set(t.int32Data as number[]);
  return { dtype, dims, data: out };
}

export function encodeModel(m: onnx.IModelProto): Uint8Array {
  return onnx.ModelProto.encode(m).finish();
}

export function decodeModel(bytes: Uint8Array): onnx.ModelProto {
  return onnx.ModelProto.decode(bytes);
}

export function readModel(file: string): onnx.ModelProto {
  let bytes: Buffer;
  try {
    bytes = fs.readFileSync(file);
  } catch (e) {
    throw new Error(`cannot read ONNX model ${file}: ${(e as Error).message}`);
  }
  try {
    return decodeModel(bytes);
  } catch (e) {
    throw new Error(`${file} is not a valid ONNX model (${(e as Error).message})`);
  }
}
