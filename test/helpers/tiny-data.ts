/**
 * Tiny, learnable, Fashion-MNIST-shaped datasets for tests: four gzipped IDX files
 * (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-images-idx3-ubyte.gz,
 * t10k-labels-idx1-ubyte.gz), 28x28 uint8 images, 10 classes, written into a fresh temp dir.
 *
 * Class k is a bright horizontal band (rows 3+2k and 4+2k) on a dim noisy background, so a linear
 * model can learn it, and the random horizontal flip of training leaves it unchanged. Labels cycle
 * through the classes in a seeded random order; everything is seeded, so the same call writes the
 * same bytes.
 */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { writeIdx } from '../../src/data/idx';

export interface TinyDataOptions {
  train?: number;
  test?: number;
  seed?: number;
  /** Folder to write into (default: a new temp dir). */
  dir?: string;
}

export const TINY_SIDE = 28;
export const TINY_CLASSES = 10;

/** mulberry32: a tiny seeded PRNG, independent of the code under test. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** Images and labels of one split (uint8, n*28*28 and n). */
export function makeSplit(n: number, seed: number): { images: Uint8Array; labels: Uint8Array } {
  const rnd = prng(seed);
  const S = TINY_SIDE;
  const images = new Uint8Array(n * S * S);
  const labels = new Uint8Array(n);
  for (let i = 0; i < n; i++) {
    const k = (i + Math.floor(rnd() * TINY_CLASSES)) % TINY_CLASSES;
    labels[i] = k;
    const base = i * S * S;
    for (let p = 0; p < S * S; p++) images[base + p] = Math.floor(rnd() * 70);
    for (const row of [3 + 2 * k, 4 + 2 * k]) {
      for (let c = 2; c < S - 2; c++) images[base + row * S + c] = 180 + Math.floor(rnd() * 76);
    }
  }
  return { images, labels };
}

/** Writes the four IDX files and returns the folder. */
export function writeTinyFashionMnist(o: TinyDataOptions = {}): string {
  const dir = o.dir ?? fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-tiny-data-'));
  fs.mkdirSync(dir, { recursive: true });
  const seed = o.seed ?? 7;
  const tr = makeSplit(o.train ?? 256, seed);
  const te = makeSplit(o.test ?? 128, seed + 1000);
  writeIdx(path.join(dir, 'train-images-idx3-ubyte.gz'), [tr.labels.length, TINY_SIDE, TINY_SIDE], tr.images);
  writeIdx(path.join(dir, 'train-labels-idx1-ubyte.gz'), [tr.labels.length], tr.labels);
  writeIdx(path.join(dir, 't10k-images-idx3-ubyte.gz'), [te.labels.length, TINY_SIDE, TINY_SIDE], te.images);
  writeIdx(path.join(dir, 't10k-labels-idx1-ubyte.gz'), [te.labels.length], te.labels);
  return dir;
}

/** A fresh temp dir for a test's outputs. */
export function tempDir(prefix = 'ljtrain-test-'): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), prefix));
}

/** Removes a temp dir made by this module (ignores errors). */
export function removeDir(dir: string | undefined): void {
  if (dir && dir.startsWith(os.tmpdir())) fs.rmSync(dir, { recursive: true, force: true });
}
