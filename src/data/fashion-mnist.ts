/**
 * Fashion-MNIST (Zalando Research; 60000 train + 10000 test, 28x28 grey, 10 classes) from IDX files.
 *
 * Where it is looked for, first hit wins (see {@link fashionMnistSearchPath}):
 *   1. data/fashion-mnist under the project root (found from this file) and under process.cwd()
 *      — the full set, put there by tools/fetch-fashion-mnist.sh
 *   2. /usr/share/datasets/fashion-mnist — Debian's dataset-fashion-mnist package
 *   3. data/fashion-mnist-subset — the embedded real subset (6000 train + 1000 test) shipped in the repo
 * An explicit folder is used as-is and must hold all four files.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { Dataset, Normalize } from './dataset';
import { DataError, readIdxImages, readIdxLabels } from './idx';
import { projectRoot } from '../util/project-root';

/** Mean of Fashion-MNIST training pixels scaled to [0, 1]. */
export const FASHION_MNIST_MEAN = 0.286;
/** Standard deviation of Fashion-MNIST training pixels scaled to [0, 1]. */
export const FASHION_MNIST_STD = 0.353;
/** The normalisation {@link loadFashionMnist} attaches to its datasets. */
export const FASHION_MNIST_NORMALIZE: Normalize = Object.freeze({ mean: FASHION_MNIST_MEAN, std: FASHION_MNIST_STD });

/** Class names, by label index. */
export const FASHION_MNIST_CLASSES: readonly string[] = Object.freeze([
  'T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot',
]);

/** The four standard file stems; each may be present raw or with `.gz`. */
export const FASHION_MNIST_FILES = Object.freeze({
  trainImages: 'train-images-idx3-ubyte',
  trainLabels: 'train-labels-idx1-ubyte',
  testImages: 't10k-images-idx3-ubyte',
  testLabels: 't10k-labels-idx1-ubyte',
});

/** Where Debian's dataset-fashion-mnist package installs the full set. */
export const FASHION_MNIST_SYSTEM_DIR = '/usr/share/datasets/fashion-mnist';

/** Both splits and the folder they were read from. */
export interface FashionMnist {
  train: Dataset;
  test: Dataset;
  /** Absolute path of the folder read. */
  source: string;
  /** True when the embedded subset (data/fashion-mnist-subset) was used, not the full set. */
  embedded: boolean;
}

type FileKey = keyof typeof FASHION_MNIST_FILES;

const SIDE = 28;
const CLASSES = 10;
const SUBSET_DIR = path.join('data', 'fashion-mnist-subset');
const FULL_DIR = path.join('data', 'fashion-mnist');


/** The folders tried, in order, when no folder is given. */
export function fashionMnistSearchPath(): string[] {
  const roots = [projectRoot(), process.cwd()];
  const dirs = [
    ...roots.map((r) => path.resolve(r, FULL_DIR)),
    FASHION_MNIST_SYSTEM_DIR,
    ...roots.map((r) => path.resolve(r, SUBSET_DIR)),
  ];
  return [...new Set(dirs)];
}

/** Path of one standard file in `dir`: the raw name if present, else `.gz`, else null. */
function findFile(dir: string, stem: string): string | null {
  for (const name of [stem, stem + '.gz']) {
    const p = path.join(dir, name);
    if (fs.existsSync(p)) return p;
  }
  return null;
}

/** The four files of `dir`, or the stems missing from it. */
function filesIn(dir: string): { files: Record<FileKey, string> | null; missing: string[] } {
  const files = {} as Record<FileKey, string>;
  const missing: string[] = [];
  for (const [key, stem] of Object.entries(FASHION_MNIST_FILES) as [FileKey, string][]) {
    const f = findFile(dir, stem);
    if (f) files[key] = f;
    else missing.push(`${stem}(.gz)`);
  }
  return { files: missing.length ? null : files, missing };
}

function isNonEmptyDir(dir: string): boolean {
  try {
    return fs.statSync(dir).isDirectory() && fs.readdirSync(dir).length > 0;
  } catch {
    return false;
  }
}

/**
 * The folder to read from. An explicit `dir` must hold the four files. Otherwise the first folder of
 * `searchPath` that holds them; a folder that exists with files in it but lacks some of the four is an
 * error (a half-finished fetch should not silently fall back to the subset).
 */
export function locateFashionMnist(dir?: string, searchPath: string[] = fashionMnistSearchPath()): string {
  if (dir !== undefined) {
    const abs = path.resolve(dir);
    if (!fs.existsSync(abs) || !fs.statSync(abs).isDirectory()) {
      throw new DataError(`Fashion-MNIST folder not found: ${abs}. Give a folder holding the four IDX files, or run tools/fetch-fashion-mnist.sh.`);
    }
    const { files, missing } = filesIn(abs);
    if (!files) throw new DataError(`Fashion-MNIST folder ${abs} lacks ${missing.join(', ')}. Run tools/fetch-fashion-mnist.sh ${abs} or point to the right folder.`);
    return abs;
  }
  for (const d of searchPath) {
    if (!isNonEmptyDir(d)) continue;
    const { files, missing } = filesIn(d);
    if (files) return d;
    throw new DataError(
      `Fashion-MNIST folder ${d} is incomplete: it lacks ${missing.join(', ')}. ` +
        'Run tools/fetch-fashion-mnist.sh to fill it, or remove the folder to fall back to the next location.',
    );
  }
  throw new DataError(
    `Fashion-MNIST not found; looked in ${searchPath.join(', ')}. Run tools/fetch-fashion-mnist.sh, or pass the folder holding the four IDX files.`,
  );
}

function readSplit(imagesFile: string, labelsFile: string): Dataset {
  const im = readIdxImages(imagesFile);
  const lb = readIdxLabels(labelsFile);
  if (im.rows !== SIDE || im.cols !== SIDE) {
    throw new DataError(`${imagesFile} holds ${im.rows}x${im.cols} images; Fashion-MNIST images are ${SIDE}x${SIDE}. Check the file.`);
  }
  if (im.n !== lb.n) {
    throw new DataError(`${imagesFile} holds ${im.n} images but ${labelsFile} holds ${lb.n} labels; they must match. One of them is from another set or damaged; fetch both again.`);
  }
  for (let i = 0; i < lb.n; i++) {
    if (lb.data[i] >= CLASSES) {
      throw new DataError(`${labelsFile} has label ${lb.data[i]} at index ${i}; Fashion-MNIST labels are 0..${CLASSES - 1}. Check the file.`);
    }
  }
  return {
    images: im.data,
    labels: lb.data,
    n: im.n,
    height: SIDE,
    width: SIDE,
    channels: 1,
    classes: CLASSES,
    normalize: FASHION_MNIST_NORMALIZE,
  };
}

/**
 * Loads both splits of Fashion-MNIST. With `dir`, reads exactly that folder; otherwise searches
 * data/fashion-mnist, /usr/share/datasets/fashion-mnist, then the embedded subset.
 * @throws DataError when files are missing, truncated, corrupt, of the wrong kind, or inconsistent.
 */
export function loadFashionMnist(dir?: string): FashionMnist {
  const source = locateFashionMnist(dir);
  const { files } = filesIn(source);
  const f = files!;
  const embedded = path.basename(source) === path.basename(SUBSET_DIR);
  return {
    train: readSplit(f.trainImages, f.trainLabels),
    test: readSplit(f.testImages, f.testLabels),
    source,
    embedded,
  };
}
