/**
 * ONNX Runtime's training API in Node, through the training build of onnxruntime-web 1.19.2
 * (dist/ort.training.wasm.min.js + ort-training-wasm-simd-threaded.wasm; 1.19.x is the last release
 * that ships it). The package's `./training` export is closed to Node, so the bundle is required by
 * absolute path. One thread; models and checkpoint are passed as bytes.
 *
 *   const be = await OrtTrainingBackend.create({ trainingModel, evalModel, optimizerModel, checkpoint });
 *   const out = await be.trainStep({ x: { dtype: 'float32', data, dims: [4, 3] } });
 *   await be.optimizerStep();
 *   await be.lazyResetGrad();
 *
 * The wasm build throws bare numbers (C++ exception pointers) for many errors; every call here turns
 * whatever is thrown into an OrtTrainingError that says what was being done, with ORT's own message
 * (read back from the exception object in wasm memory where possible).
 */
import * as path from 'node:path';
import { ADAMW_MOMENTUM_NAMES, Checkpoint, decodeCheckpoint } from '../artifacts/checkpoint';
import { decodeModel } from '../onnx/proto';
import type { DType, TypedArray } from '../onnx/proto';

/** The onnxruntime-web version whose training build this module drives. */
export const ORT_WEB_VERSION = '1.19.2';

/** A tensor crossing the API: project dtype, typed data, dims. */
export interface HostTensor {
  dtype: DType;
  data: TypedArray;
  dims: number[];
}

export type Feeds = Record<string, HostTensor>;

export interface OrtTrainingCreateOptions {
  trainingModel: Uint8Array;
  evalModel?: Uint8Array;
  optimizerModel?: Uint8Array;
  checkpoint: Uint8Array;
  /** Names of where the bytes came from, for error messages (e.g. the artifact file paths). */
  sources?: string[];
  /** ORT log level 0 (verbose) .. 4 (fatal); default 3 (errors). */
  logSeverityLevel?: 0 | 1 | 2 | 3 | 4;
}

export class OrtTrainingError extends Error {
  constructor(message: string, readonly raw?: unknown) {
    super(message);
    this.name = 'OrtTrainingError';
  }
}

// ---------------------------------------------------------------- the training bundle

/* Minimal typings of what we use from the bundle (onnxruntime-common 1.19 TrainingSession). */
interface OrtTensorLike {
  readonly type: string;
  readonly dims: readonly number[];
  readonly data: unknown;
  dispose?(): void;
}
interface OrtTensorCtor {
  new (type: string, data: unknown, dims: readonly number[]): OrtTensorLike;
}
interface OrtTrainingSessionLike {
  runTrainStep(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  runOptimizerStep(): Promise<void>;
  lazyResetGrad(): Promise<void>;
  runEvalStep(feeds: Record<string, OrtTensorLike>): Promise<Record<string, OrtTensorLike>>;
  getParametersSize(trainableOnly: boolean): Promise<number>;
  getContiguousParameters(trainableOnly: boolean): Promise<OrtTensorLike>;
  loadParametersBuffer(buffer: Uint8Array, trainableOnly: boolean): Promise<void>;
  release(): Promise<void>;
  readonly trainingInputNames: readonly string[];
  readonly trainingOutputNames: readonly string[];
  readonly evalInputNames: readonly string[];
  readonly evalOutputNames: readonly string[];
}
interface OrtTrainingModule {
  env: { wasm: { numThreads?: number; proxy?: boolean; simd?: boolean }; logLevel?: string };
  Tensor: OrtTensorCtor;
  TrainingSession: {
    create(
      o: { checkpointState: Uint8Array; trainModel: Uint8Array; evalModel?: Uint8Array; optimizerModel?: Uint8Array },
      so?: Record<string, unknown>,
    ): Promise<OrtTrainingSessionLike>;
  };
}

let cached: OrtTrainingModule | null = null;

/** Absolute path of the training bundle inside the installed onnxruntime-web. */
export function trainingBundlePath(): string {
  // package.json is not exported by the package; its main entry lives in dist/ next to the bundle.
  let main: string;
  try {
    main = require.resolve('onnxruntime-web');
  } catch (e) {
    throw new OrtTrainingError(`onnxruntime-web is not installed (npm install --save-exact onnxruntime-web@${ORT_WEB_VERSION}): ${(e as Error).message}`);
  }
  return path.join(path.dirname(main), 'ort.training.wasm.min.js');
}

/** Loads the training bundle once (numThreads 1, no proxy worker). */
export function loadOrtTraining(): OrtTrainingModule {
  if (cached) return cached;
  const file = trainingBundlePath();
  let mod: OrtTrainingModule;
  try {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    mod = require(file) as OrtTrainingModule;
  } catch (e) {
    throw new OrtTrainingError(`cannot load the ONNX Runtime training build ${file}: ${(e as Error).message}`);
  }
  if (!mod.TrainingSession) throw new OrtTrainingError(`${file} has no TrainingSession (is onnxruntime-web ${ORT_WEB_VERSION} installed?)`);
  mod.env.wasm.numThreads = 1;
  mod.env.wasm.proxy = false;
  cached = mod;
  return mod;
}

// ---------------------------------------------------------------- errors

/**
 * The wasm instance's memory and function table, captured while the runtime instantiates its module
 * (WebAssembly.instantiate is wrapped only for the duration of the first session creation). With
 * them a bare exception pointer can be turned back into the C++ exception's what() text.
 */
let wasmView: { memory: WebAssembly.Memory; table: WebAssembly.Table } | null = null;

function captureWasmInstance(): () => void {
  if (wasmView) return () => undefined;
  const original = WebAssembly.instantiate;
  // Put the original back only if nobody wrapped it after us.
  const restore = () => {
    if (WebAssembly.instantiate === (wrapped as unknown)) WebAssembly.instantiate = original;
  };
  const wrapped = async function (this: unknown, src: unknown, imports?: WebAssembly.Imports) {
    const r = await (original as (...a: unknown[]) => Promise<unknown>).call(this, src, imports);
    try {
      const inst = r instanceof WebAssembly.Instance ? r : (r as WebAssembly.WebAssemblyInstantiatedSource).instance;
      let memory: WebAssembly.Memory | null = null;
      let table: WebAssembly.Table | null = null;
      for (const v of Object.values(inst.exports)) {
        if (v instanceof WebAssembly.Memory) memory = v;
        else if (v instanceof WebAssembly.Table) table = v;
      }
      for (const mod of Object.values(imports ?? {})) {
        for (const v of Object.values(mod as Record<string, unknown>)) if (!memory && v instanceof WebAssembly.Memory) memory = v;
      }
      if (memory && table && !wasmView) {
        wasmView = { memory, table };
        restore();
      }
    } catch {
      /* message recovery is best effort */
    }
    return r;
  };
  WebAssembly.instantiate = wrapped as typeof WebAssembly.instantiate;
  return restore;
}

/**
 * Best effort: reads what() of the C++ exception at `ptr` (Itanium ABI on wasm32: the object starts
 * with its vtable pointer; the vtable's third slot, after the two destructors, is what()).
 */
export function recoverExceptionMessage(ptr: number): string | null {
  if (!wasmView || !Number.isInteger(ptr) || ptr <= 0) return null;
  try {
    const { memory, table } = wasmView;
    const size = memory.buffer.byteLength;
    if (ptr + 4 > size || ptr % 4 !== 0) return null;
    const u32 = new Uint32Array(memory.buffer);
    const vptr = u32[ptr >>> 2];
    if (vptr === 0 || vptr % 4 !== 0 || vptr + 12 > size) return null;
    const whatIndex = u32[(vptr >>> 2) + 2];
    if (whatIndex === 0 || whatIndex >= table.length) return null;
    const what = table.get(whatIndex) as ((p: number) => number) | null;
    if (typeof what !== 'function') return null;
    const cstr = what(ptr) >>> 0;
    if (cstr === 0 || cstr >= size) return null;
    const u8 = new Uint8Array(memory.buffer);
    let end = cstr;
    while (end < size && u8[end] !== 0 && end - cstr < 8192) end++;
    const text = new TextDecoder('utf-8', { fatal: false }).decode(u8.subarray(cstr, end)).trim();
    return text.length > 0 ? text : null;
  } catch {
    return null;
  }
}

/** Runs fn and turns anything thrown into an OrtTrainingError: "<what> failed: <message>". */
async function guarded<T>(what: string, fn: () => Promise<T>): Promise<T> {
  try {
    return await fn();
  } catch (e) {
    throw describeError(what, e);
  }
}

function describeError(what: string, e: unknown): OrtTrainingError {
  if (e instanceof OrtTrainingError) return e;
  if (typeof e === 'number') {
    const msg = recoverExceptionMessage(e);
    if (msg) return new OrtTrainingError(`${what} failed: ${tidyOrtMessage(msg)}`, e);
    return new OrtTrainingError(
      `${what} failed: the ONNX Runtime wasm build threw a bare C++ exception (pointer ${e}) whose message could not be read; ` +
        'check the artifacts against ORT-TRAINING-FORMAT.md',
      e,
    );
  }
  if (e instanceof Error) return new OrtTrainingError(`${what} failed: ${tidyOrtMessage(e.message)}`, e);
  return new OrtTrainingError(`${what} failed: ${String(e)}`, e);
}

/**
 * Shortens ORT's "<build path>/module.cc:632 <C++ signature> [ONNXRuntimeError] : 2 : INVALID_ARGUMENT : msg"
 * to "INVALID_ARGUMENT: msg (module.cc:632)"; other text is returned as is.
 */
export function tidyOrtMessage(msg: string): string {
  const m = /^(?:\S*\/)?([\w.-]+:\d+)\s[\s\S]*?\[ONNXRuntimeError\] : \d+ : (\w+) : ([\s\S]*)$/.exec(msg.trim());
  // One line: ORT's multi-line messages ("Invalid graph inputs.\n\tExpected: ...") joined with spaces.
  const oneLine = (x: string) => x.trim().replace(/\s*\n\s*/g, ' ');
  if (!m) return oneLine(msg);
  return `${m[2]}: ${oneLine(m[3])} (${m[1]})`;
}

// ---------------------------------------------------------------- tensors

const ORT_TYPE: Record<DType, string> = { float32: 'float32', float64: 'float64', int64: 'int64', int32: 'int32', bool: 'bool' };

function toHost(name: string, t: OrtTensorLike): HostTensor {
  const dims = [...t.dims];
  switch (t.type) {
    case 'float32': return { dtype: 'float32', data: Float32Array.from(t.data as Float32Array), dims };
    case 'float64': return { dtype: 'float64', data: Float64Array.from(t.data as Float64Array), dims };
    case 'int64': return { dtype: 'int64', data: BigInt64Array.from(t.data as BigInt64Array), dims };
    case 'int32': return { dtype: 'int32', data: Int32Array.from(t.data as Int32Array), dims };
    case 'bool': return { dtype: 'bool', data: Uint8Array.from(t.data as Uint8Array), dims };
    default: throw new OrtTrainingError(`output ${name} has type ${t.type}, which this wrapper does not convert`);
  }
}

// ---------------------------------------------------------------- pre-checks

const GRAD_BUFFER_SUFFIX = '_grad.accumulation.buffer';

/**
 * Checks the checkpoint against the training model before ORT sees them, because the runtime's
 * own errors for these cases are unreadable (e.g. "IsTensor() was false", "raw_hash_map<>::at").
 * Returns a message, or null when they agree or when either cannot be decoded here (ORT then
 * reports on them itself).
 */
function precheck(trainingModel: Uint8Array, checkpoint: Uint8Array, optimizerModel: Uint8Array | undefined): string | null {
  let ckpt: Checkpoint;
  let inputs: string[];
  let momentumNames: readonly string[] = ADAMW_MOMENTUM_NAMES;
  try {
    ckpt = decodeCheckpoint(checkpoint, '(checkpoint bytes)');
    inputs = (decodeModel(trainingModel).graph?.input ?? []).map((i) => i.name ?? '');
    if (optimizerModel && (decodeModel(optimizerModel).graph?.node ?? []).some((n) => n.opType === 'SGDOptimizerV2')) momentumNames = ADAMW_MOMENTUM_NAMES.slice(0, 1);
  } catch {
    return null;
  }
  const withOptimizer = optimizerModel !== undefined;
  const inputSet = new Set(inputs);
  const trainable = inputs.filter((n) => inputSet.has(n + GRAD_BUFFER_SUFFIX));
  const rg = new Set(ckpt.requiresGradParams.map((t) => t.name));
  const problems: string[] = [];
  const missing = trainable.filter((n) => !rg.has(n));
  if (missing.length) problems.push(`trainable parameters of the training model missing from the checkpoint's requires-grad parameters: ${missing.join(', ')}`);
  const extraRg = [...rg].filter((n) => !trainable.includes(n));
  if (extraRg.length) problems.push(`checkpoint requires-grad parameters without a gradient buffer input in the training model: ${extraRg.join(', ')}`);
  const extraFrozen = ckpt.frozenParams.map((t) => t.name).filter((n) => !inputSet.has(n));
  if (extraFrozen.length) problems.push(`checkpoint frozen parameters that are not inputs of the training model: ${extraFrozen.join(', ')}`);
  for (const s of withOptimizer ? ckpt.optimizer?.states ?? [] : []) {
    const names = s.momentums.map((m) => m.name).sort();
    if (names.length !== momentumNames.length || names.some((n, i) => n !== momentumNames[i])) {
      const opt = momentumNames.length === 1 ? 'SGD' : 'AdamW';
      problems.push(`optimizer state of ${s.paramName} has momentums [${names.join(', ')}], ORT's ${opt} needs [${momentumNames.join(', ')}]`);
    }
  }
  return problems.length ? `the checkpoint does not fit the training model: ${problems.join('; ')}` : null;
}

// ---------------------------------------------------------------- the backend

/** A thin wrapper over one onnxruntime-web TrainingSession; every call reports what failed. */
export class OrtTrainingBackend {
  private released = false;

  private constructor(
    private readonly ort: OrtTrainingModule,
    private readonly session: OrtTrainingSessionLike,
    /** Where the artifacts came from (for messages). */
    readonly sources: string,
  ) {}

  /** Creates the TrainingSession from artifact bytes. */
  static async create(o: OrtTrainingCreateOptions): Promise<OrtTrainingBackend> {
    const sources = o.sources?.length ? o.sources.join(', ') : '<in-memory artifacts>';
    const what = `creating the TrainingSession from ${sources}`;
    const mismatch = precheck(o.trainingModel, o.checkpoint, o.optimizerModel);
    if (mismatch) throw new OrtTrainingError(`${what} failed: ${mismatch}`);
    const ort = await guarded(what, async () => loadOrtTraining());
    const restore = captureWasmInstance();
    for (const [k, v] of Object.entries({ trainingModel: o.trainingModel, checkpoint: o.checkpoint, evalModel: o.evalModel, optimizerModel: o.optimizerModel })) {
      if (v !== undefined && !(v instanceof Uint8Array)) throw new OrtTrainingError(`${what} failed: ${k} must be a Uint8Array (a path would go through fetch)`);
    }
    const session = await guarded(what, () =>
      ort.TrainingSession.create(
        {
          checkpointState: o.checkpoint,
          trainModel: o.trainingModel,
          ...(o.evalModel ? { evalModel: o.evalModel } : {}),
          ...(o.optimizerModel ? { optimizerModel: o.optimizerModel } : {}),
        },
        { executionProviders: ['wasm'], logSeverityLevel: o.logSeverityLevel ?? 3, intraOpNumThreads: 1, interOpNumThreads: 1 },
      ),
    ).finally(restore);
    return new OrtTrainingBackend(ort, session, sources);
  }

  get trainingInputNames(): readonly string[] { return this.session.trainingInputNames; }
  get trainingOutputNames(): readonly string[] { return this.session.trainingOutputNames; }
  get evalInputNames(): readonly string[] { return this.session.evalInputNames; }
  get evalOutputNames(): readonly string[] { return this.session.evalOutputNames; }

  private live(what: string): void {
    if (this.released) throw new OrtTrainingError(`${what} failed: the TrainingSession (${this.sources}) was already released`);
  }

  private toOrt(what: string, feeds: Feeds): Record<string, OrtTensorLike> {
    const out: Record<string, OrtTensorLike> = {};
    for (const [name, t] of Object.entries(feeds)) {
      const n = t.dims.reduce((p, q) => p * q, 1);
      if (t.data.length !== n) throw new OrtTrainingError(`${what} failed: feed ${name} has ${t.data.length} values for dims [${t.dims.join(',')}]`);
      try {
        out[name] = new this.ort.Tensor(ORT_TYPE[t.dtype], t.data, t.dims);
      } catch (e) {
        throw describeError(`${what} (making feed ${name})`, e);
      }
    }
    return out;
  }

  private checkFeeds(what: string, feeds: Feeds, expected: readonly string[]): void {
    const missing = expected.filter((n) => !(n in feeds));
    const extra = Object.keys(feeds).filter((n) => !expected.includes(n));
    if (missing.length || extra.length) {
      throw new OrtTrainingError(
        `${what} failed: feeds do not match the model inputs [${expected.join(', ')}]` +
          (missing.length ? `; missing ${missing.join(', ')}` : '') +
          (extra.length ? `; unknown ${extra.join(', ')}` : ''),
      );
    }
  }

  private fromOrt(res: Record<string, OrtTensorLike>): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const [k, v] of Object.entries(res)) {
      out[k] = toHost(k, v);
      v.dispose?.();
    }
    return out;
  }

  /** Forward + backward; gradients accumulate into the runtime's buffers. Returns the training outputs. */
  async trainStep(feeds: Feeds): Promise<Record<string, HostTensor>> {
    const what = 'running train step';
    this.live(what);
    this.checkFeeds(what, feeds, this.session.trainingInputNames);
    const f = this.toOrt(what, feeds);
    return this.fromOrt(await guarded(what, () => this.session.runTrainStep(f)));
  }

  /** Applies the optimizer model to the accumulated gradients (and increments the stored step). */
  async optimizerStep(): Promise<void> {
    const what = 'running optimizer step';
    this.live(what);
    await guarded(what, () => this.session.runOptimizerStep());
  }

  /** Makes the next train step overwrite (not add to) the gradient buffers. */
  async lazyResetGrad(): Promise<void> {
    const what = 'resetting gradients (lazyResetGrad)';
    this.live(what);
    await guarded(what, () => this.session.lazyResetGrad());
  }

  async evalStep(feeds: Feeds): Promise<Record<string, HostTensor>> {
    const what = 'running eval step';
    this.live(what);
    this.checkFeeds(what, feeds, this.session.evalInputNames);
    const f = this.toOrt(what, feeds);
    return this.fromOrt(await guarded(what, () => this.session.runEvalStep(f)));
  }

  async getParametersSize(trainableOnly: boolean): Promise<number> {
    const what = `getting the parameter count (trainableOnly=${trainableOnly})`;
    this.live(what);
    return guarded(what, () => this.session.getParametersSize(trainableOnly));
  }

  /** All (or only trainable) parameters as one flat float32 buffer, in training-graph input order. */
  async getContiguousParameters(trainableOnly: boolean): Promise<Float32Array> {
    const what = `reading parameters (getContiguousParameters, trainableOnly=${trainableOnly})`;
    this.live(what);
    const t = await guarded(what, () => this.session.getContiguousParameters(trainableOnly));
    if (t.type !== 'float32') throw new OrtTrainingError(`${what} failed: got ${t.type} parameters, expected float32`);
    const out = Float32Array.from(t.data as Float32Array);
    t.dispose?.();
    return out;
  }

  /** Overwrites the parameters from a flat float32 buffer in training-graph input order. */
  async loadParametersBuffer(values: Float32Array, trainableOnly: boolean): Promise<void> {
    const what = `loading parameters (loadParametersBuffer, trainableOnly=${trainableOnly})`;
    this.live(what);
    const n = await guarded(what, () => this.session.getParametersSize(trainableOnly));
    if (values.length !== n) throw new OrtTrainingError(`${what} failed: buffer has ${values.length} values, the session has ${n} parameters`);
    const bytes = new Uint8Array(values.buffer, values.byteOffset, values.byteLength);
    await guarded(what, () => this.session.loadParametersBuffer(bytes, trainableOnly));
  }

  async release(): Promise<void> {
    if (this.released) return;
    this.released = true;
    await guarded(`releasing the TrainingSession (${this.sources})`, () => this.session.release());
  }
}
