/**
 * Makes the embedded Fashion-MNIST subset (data/fashion-mnist-subset) from the full set.
 *
 *   npx tsc -p . && node dist/tools/make-fashion-mnist-subset.js [SRC] [OUT] [--train N] [--test M]
 *
 * SRC defaults to /usr/share/datasets/fashion-mnist (Debian's dataset-fashion-mnist), OUT to
 * data/fashion-mnist-subset, N to 6000 and M to 1000. Takes the first N training and first M test
 * samples, in file order, and prints per-class counts. If any class of the first N (or M) is more than
 * 20% away from an even share, it takes a stratified subset instead: the first ⌈N/10⌉ of each class,
 * kept in file order. Writes gzipped IDX files with the standard names (deterministic bytes).
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { readIdxImages, readIdxLabels, writeIdx } from '../src/data/idx';
import { FASHION_MNIST_FILES, FASHION_MNIST_SYSTEM_DIR } from '../src/data/fashion-mnist';

const CLASSES = 10;
const MAX_DEVIATION = 0.2;

function counts(labels: Uint8Array): number[] {
  const c = new Array(CLASSES).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

function balanced(c: number[], n: number): boolean {
  const share = n / CLASSES;
  return c.every((k) => Math.abs(k - share) <= MAX_DEVIATION * share);
}

/** Indices of the first n samples, or a stratified pick when those are unbalanced. */
function pick(labels: Uint8Array, n: number, split: string): { idx: number[]; how: string } {
  const first = Array.from({ length: n }, (_, i) => i);
  const c = counts(labels.subarray(0, n));
  if (balanced(c, n)) return { idx: first, how: 'first' };
  console.log(`${split}: first ${n} are unbalanced (${c.join(' ')}); taking a stratified subset`);
  const per = Math.ceil(n / CLASSES);
  const taken = new Array(CLASSES).fill(0);
  const idx: number[] = [];
  for (let i = 0; i < labels.length && idx.length < per * CLASSES; i++) {
    if (taken[labels[i]] < per) {
      taken[labels[i]]++;
      idx.push(i);
    }
  }
  return { idx, how: 'stratified' };
}

function subset(srcDir: string, outDir: string, imgStem: string, lblStem: string, n: number, split: string): void {
  const find = (stem: string) => [stem, stem + '.gz'].map((s) => path.join(srcDir, s)).find((p) => fs.existsSync(p)) ?? path.join(srcDir, stem + '.gz');
  const im = readIdxImages(find(imgStem));
  const lb = readIdxLabels(find(lblStem));
  if (n > im.n) throw new Error(`${split}: asked for ${n} samples, the source has ${im.n}`);
  const { idx, how } = pick(lb.data, n, split);
  const px = im.rows * im.cols;
  const images = new Uint8Array(idx.length * px);
  const labels = new Uint8Array(idx.length);
  idx.forEach((s, k) => {
    images.set(im.data.subarray(s * px, (s + 1) * px), k * px);
    labels[k] = lb.data[s];
  });
  const imgOut = path.join(outDir, imgStem + '.gz');
  const lblOut = path.join(outDir, lblStem + '.gz');
  writeIdx(imgOut, [idx.length, im.rows, im.cols], images);
  writeIdx(lblOut, [idx.length], labels);
  const c = counts(labels);
  console.log(`${split}: ${idx.length} samples (${how}), per class [0..9]: ${c.join(' ')}; min ${Math.min(...c)} max ${Math.max(...c)}`);
  console.log(`  ${imgOut} ${fs.statSync(imgOut).size} bytes, ${lblOut} ${fs.statSync(lblOut).size} bytes`);
}

function main(argv: string[]): void {
  const pos: string[] = [];
  let nTrain = 6000;
  let nTest = 1000;
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--train') nTrain = Number(argv[++i]);
    else if (argv[i] === '--test') nTest = Number(argv[++i]);
    else pos.push(argv[i]);
  }
  const root = path.resolve(__dirname, '..', '..');
  const src = path.resolve(pos[0] ?? FASHION_MNIST_SYSTEM_DIR);
  const out = path.resolve(pos[1] ?? path.join(root, 'data', 'fashion-mnist-subset'));
  fs.mkdirSync(out, { recursive: true });
  console.log(`source ${src} -> ${out}`);
  subset(src, out, FASHION_MNIST_FILES.trainImages, FASHION_MNIST_FILES.trainLabels, nTrain, 'train');
  subset(src, out, FASHION_MNIST_FILES.testImages, FASHION_MNIST_FILES.testLabels, nTest, 'test');
}

if (require.main === module) {
  try {
    main(process.argv.slice(2));
  } catch (e) {
    console.error(`error: ${(e as Error).message}`);
    process.exit(1);
  }
}
