/**
 * Sessions on onnxruntime-node: execution provider choice, threads, and the CPU options that
 * measured fastest for small train-step graphs (no spin-waiting).
 */
import * as ort from 'onnxruntime-node';
import type { DType, TypedArray } from '../onnx/proto';

export type ExecutionProvider = 'cpu' | 'cuda';

export interface SessionConfig {
  ep?: ExecutionProvider;
  /** Intra-op threads; 0 lets ORT choose. */
  threads?: number;
  /** Spin-waiting burns the other core on a 2-core machine; off by default (see README, bench). */
  spinning?: boolean;
  graphOptimization?: 'disabled' | 'basic' | 'extended' | 'all';
}

export class UserError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'UserError';
  }
}

function sessionOptions(cfg: SessionConfig): ort.InferenceSession.SessionOptions {
  const opts: ort.InferenceSession.SessionOptions = {
    executionProviders: [cfg.ep === 'cuda' ? 'cuda' : 'cpu'],
    graphOptimizationLevel: cfg.graphOptimization ?? 'all',
    executionMode: 'sequential',
    extra: { session: { 'intra_op.allow_spinning': cfg.spinning ? '1' : '0', 'inter_op.allow_spinning': '0' } },
  };
  if (cfg.threads && cfg.threads > 0) opts.intraOpNumThreads = cfg.threads;
  return opts;
}

/** Creates a session; a missing CUDA provider is reported with how to install it, never hidden. */
export async function createSession(model: Uint8Array | string, cfg: SessionConfig = {}, what = 'model'): Promise<ort.InferenceSession> {
  try {
    return typeof model === 'string'
      ? await ort.InferenceSession.create(model, sessionOptions(cfg))
      : await ort.InferenceSession.create(model, sessionOptions(cfg));
  } catch (e) {
    const msg = (e as Error).message ?? String(e);
    if (cfg.ep === 'cuda') {
      throw new UserError(
        `the CUDA execution provider is not available to onnxruntime-node (${msg.split('\n')[0]}). ` +
          'Install it with: npm ci --onnxruntime-node-install=cuda12 (needs CUDA 12 and cuDNN 9 on the machine), or use --ep cpu.',
      );
    }
    throw new Error(`onnxruntime could not load the ${what}: ${msg}`);
  }
}

export function tensor(dtype: DType, data: TypedArray, dims: readonly number[]): ort.Tensor {
  const t = dtype === 'float32' ? 'float32' : dtype === 'float64' ? 'float64' : dtype === 'int64' ? 'int64' : dtype === 'int32' ? 'int32' : 'bool';
  return new ort.Tensor(t, data as never, dims);
}

export { ort };

/**
 * Runs a session and returns every output by name. Never pass a subset of output names to
 * onnxruntime-node's run(): 1.22/1.23 label a subset's results with the session's LEADING output
 * names (asking for ['correct'] returns the value of 'correct' under the key 'logits').
 */
export async function runAll(session: ort.InferenceSession, feeds: Record<string, ort.Tensor>, what: string): Promise<Record<string, ort.Tensor>> {
  try {
    return await session.run(feeds);
  } catch (e) {
    throw new Error(`onnxruntime failed while ${what}: ${(e as Error).message ?? String(e)}`);
  }
}
