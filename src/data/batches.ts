/**
 * Mini-batches for one epoch: optional shuffle, optional random horizontal flip (p = 0.5 per sample,
 * the paper's only augmentation, sec. 5.1), normalisation x = (p/255 − mean) / std, NCHW float32.
 *
 * Determinism and checkpoints: all randomness of an epoch is drawn from the given {@link Rng} when
 * {@link epochBatches} is called (eagerly, not as batches are pulled): first the permutation
 * (`rng.permutation(n)`, if shuffle), then one `rng.next() < 0.5` flip decision per sample in epoch
 * order (if flip). The trainer draws each epoch's plan from its own checkpointed Rng, so saving the
 * Rng state taken *before* the call plus the index of the next batch is enough to resume mid-epoch:
 * restore the Rng, call again with `startBatch`, and the same remaining batches come out.
 */
import type { Rng } from '../graph/rng';
import type { Dataset, Normalize } from './dataset';

export type { Dataset, Normalize } from './dataset';
export { FASHION_MNIST_MEAN, FASHION_MNIST_STD, FASHION_MNIST_NORMALIZE } from './fashion-mnist';

/** Options of {@link epochBatches}. */
export interface BatchOptions {
  /** Samples per batch (the last may be smaller unless dropLast). */
  batchSize: number;
  /** Visit samples in a random order drawn from `rng` (default false: dataset order). */
  shuffle?: boolean;
  /** Source of the permutation and flips; required when shuffle or flip is set. */
  rng?: Rng;
  /** Mirror each image left-right with probability 0.5 (default false). */
  flip?: boolean;
  /** Skip the last batch when it is smaller than batchSize (default false). */
  dropLast?: boolean;
  /** Pixel normalisation; default the dataset's own `normalize`, else none (x = p/255). */
  normalize?: Normalize;
  /** First batch to yield, for resuming mid-epoch; the epoch's draws are made in full regardless. */
  startBatch?: number;
}

/** One mini-batch. */
export interface Batch {
  /** size*C*H*W normalised pixels, NCHW. */
  x: Float32Array;
  /** size class labels, as ONNX int64. */
  y: BigInt64Array;
  /** Samples in this batch (batchSize, or fewer for the last one). */
  size: number;
  /** Dataset indices of the samples, in batch order. */
  indices: Int32Array;
  /** 1 where the sample was mirrored. */
  flipped: Uint8Array;
}

/** The random choices of one epoch. */
export interface EpochPlan {
  /** Sample order (identity when not shuffling). */
  order: Int32Array;
  /** Per position in `order`: 1 to mirror that sample. */
  flips: Uint8Array;
}

/** Number of batches in an epoch of n samples. */
export function numBatches(n: number, batchSize: number, dropLast = false): number {
  return dropLast ? Math.floor(n / batchSize) : Math.ceil(n / batchSize);
}

/** Draws the epoch's order and flips from `rng`, in the documented order (permutation, then flips). */
export function epochPlan(n: number, opts: { shuffle?: boolean; flip?: boolean; rng?: Rng }): EpochPlan {
  if ((opts.shuffle || opts.flip) && !opts.rng) throw new Error('epochBatches: shuffle and flip need an rng');
  let order: Int32Array;
  if (opts.shuffle) order = opts.rng!.permutation(n);
  else {
    order = new Int32Array(n);
    for (let i = 0; i < n; i++) order[i] = i;
  }
  const flips = new Uint8Array(n);
  if (opts.flip) for (let i = 0; i < n; i++) flips[i] = opts.rng!.next() < 0.5 ? 1 : 0;
  return { order, flips };
}

function perChannel(v: number | readonly number[], channels: number, what: string): number[] {
  if (typeof v === 'number') return new Array(channels).fill(v);
  if (v.length !== channels) throw new Error(`normalize.${what} has ${v.length} values for ${channels} channels`);
  return [...v];
}

/** Per-channel lookup tables byte -> normalised float. */
function lookupTables(norm: Normalize, channels: number): Float32Array[] {
  const mean = perChannel(norm.mean, channels, 'mean');
  const std = perChannel(norm.std, channels, 'std');
  return mean.map((m, c) => {
    if (!(std[c] > 0)) throw new Error(`normalize.std must be > 0, got ${std[c]}`);
    const t = new Float32Array(256);
    for (let p = 0; p < 256; p++) t[p] = (p / 255 - m) / std[c];
    return t;
  });
}

/**
 * Batches of one epoch over `ds`. The epoch's random draws happen now, in this call (see the module
 * comment); iterating then only reads them.
 */
export function epochBatches(ds: Dataset, opts: BatchOptions): IterableIterator<Batch> {
  const B = opts.batchSize;
  if (!Number.isInteger(B) || B < 1) throw new Error(`batchSize must be a positive integer, got ${B}`);
  const { n, channels: C, height: H, width: W } = ds;
  const plane = H * W;
  const sample = C * plane;
  if (ds.images.length !== n * sample) throw new Error(`dataset images hold ${ds.images.length} bytes, expected ${n}*${C}*${H}*${W}`);
  const luts = lookupTables(opts.normalize ?? ds.normalize ?? { mean: 0, std: 1 }, C);
  const plan = epochPlan(n, opts);
  const total = numBatches(n, B, opts.dropLast);
  const start = opts.startBatch ?? 0;

  function* gen(): IterableIterator<Batch> {
    for (let b = start; b < total; b++) {
      const lo = b * B;
      const size = Math.min(B, n - lo);
      const x = new Float32Array(size * sample);
      const y = new BigInt64Array(size);
      const indices = plan.order.slice(lo, lo + size);
      const flipped = plan.flips.slice(lo, lo + size);
      for (let k = 0; k < size; k++) {
        const idx = indices[k];
        y[k] = BigInt(ds.labels[idx]);
        for (let c = 0; c < C; c++) {
          const lut = luts[c];
          const src = idx * sample + c * plane;
          const dst = k * sample + c * plane;
          if (flipped[k]) {
            for (let h = 0; h < H; h++) {
              const row = h * W;
              for (let w = 0; w < W; w++) x[dst + row + w] = lut[ds.images[src + row + W - 1 - w]];
            }
          } else {
            for (let i = 0; i < plane; i++) x[dst + i] = lut[ds.images[src + i]];
          }
        }
      }
      yield { x, y, size, indices, flipped };
    }
  }
  return gen();
}
