import { GraphBuilder } from '../../src/graph/builder';
import { Value } from '../../src/graph/types';
import { encodeModel, TypedArray } from '../../src/onnx/proto';
import { createSession, tensor, ort } from '../../src/runtime/session';

/** Runs a builder's graph once on onnxruntime-node and returns outputs by name. */
export async function runGraph(b: GraphBuilder, feeds: Map<Value, TypedArray>, opts: { optimize?: boolean } = {}): Promise<Record<string, ort.Tensor>> {
  const bytes = encodeModel(b.toModel());
  const sess = await createSession(bytes, { threads: 1, graphOptimization: opts.optimize === false ? 'disabled' : 'all' });
  const f: Record<string, ort.Tensor> = {};
  for (const [v, d] of feeds) f[v.name] = tensor(v.dtype, d, v.shape.map((x) => (typeof x === 'number' ? x : -1)) as number[]);
  return sess.run(f);
}
