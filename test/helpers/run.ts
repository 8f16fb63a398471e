import { GraphBuilder } from '../../src/graph/builder';
import { Value } from '../../src/graph/types';
import { encodeModel, TypedArray } from '../../src/onnx/proto';
import { createSession, tensor, ort } from '../../src/runtime/session';

/** A feed: the data alone (the value's shape must then be static), or the data with concrete dims. */
export type Feed = TypedArray | { data: TypedArray; dims: number[] };

function toTensor(v: Value, feed: Feed): ort.Tensor {
  if (ArrayBuffer.isView(feed)) {
    if (v.shape.some((d) => typeof d !== 'number')) throw new Error(`feed for ${v.name} [${v.shape}] needs concrete dims`);
    return tensor(v.dtype, feed, v.shape as number[]);
  }
  return tensor(v.dtype, feed.data, feed.dims);
}

export interface RunOptions {
  /** false: no graph optimisation (default: all). */
  optimize?: boolean;
  /**
   * Optimisation level, overriding `optimize`. float64 graphs need 'basic' or lower: at 'extended'
   * and 'all', ORT 1.22's MatmulTransposeFusion rewrites a MatMul fed by a Transpose into
   * com.microsoft.FusedMatMul, which has a float32 CPU kernel only, and the session fails to load.
   */
  level?: 'disabled' | 'basic' | 'extended' | 'all';
}

/**
 * Opens one session on a builder's graph and returns a function that runs it (several times, with
 * different feeds) and returns outputs by name.
 */
export async function openGraph(b: GraphBuilder, opts: RunOptions = {}): Promise<(feeds: Map<Value, Feed>) => Promise<Record<string, ort.Tensor>>> {
  const bytes = encodeModel(b.toModel());
  const level = opts.level ?? (opts.optimize === false ? 'disabled' : 'all');
  const sess = await createSession(bytes, { threads: 1, graphOptimization: level });
  return (feeds) => {
    const f: Record<string, ort.Tensor> = {};
    for (const [v, d] of feeds) f[v.name] = toTensor(v, d);
    return sess.run(f);
  };
}

/** Runs a builder's graph once on onnxruntime-node and returns outputs by name. */
export async function runGraph(b: GraphBuilder, feeds: Map<Value, Feed>, opts: RunOptions = {}): Promise<Record<string, ort.Tensor>> {
  return (await openGraph(b, opts))(feeds);
}
