/** Test helpers: a tiny real Fashion-MNIST set in a temp folder, and output capture for CLI runs. */
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import { FASHION_MNIST_FILES } from '../../src/data/fashion-mnist';
import { readIdxImages, readIdxLabels, writeIdx } from '../../src/data/idx';
import { main } from '../../src/cli/main';

const SUBSET = path.resolve(__dirname, '..', '..', '..', 'data', 'fashion-mnist-subset');

/** Writes the first `train` / `test` images of the embedded subset as IDX files into a new temp folder. */
export function tinyFashionMnist(train = 320, test = 100): string {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-exp-data-'));
  const F = FASHION_MNIST_FILES;
  for (const [img, lab, n] of [[F.trainImages, F.trainLabels, train], [F.testImages, F.testLabels, test]] as const) {
    const x = readIdxImages(path.join(SUBSET, `${img}.gz`));
    const y = readIdxLabels(path.join(SUBSET, `${lab}.gz`));
    writeIdx(path.join(dir, img), [n, 28, 28], x.data.subarray(0, n * 28 * 28));
    writeIdx(path.join(dir, lab), [n], y.data.subarray(0, n));
  }
  return dir;
}

export function tmpDir(prefix: string): string {
  return fs.mkdtempSync(path.join(os.tmpdir(), `ljtrain-${prefix}-`));
}

/** Runs the CLI in-process and returns its exit code and everything it printed. */
export async function cli(args: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '', err = '';
  const ow = process.stdout.write.bind(process.stdout), ew = process.stderr.write.bind(process.stderr);
  const log = console.log, error = console.error;
  process.stdout.write = ((s: string | Uint8Array) => ((out += String(s)), true)) as typeof process.stdout.write;
  process.stderr.write = ((s: string | Uint8Array) => ((err += String(s)), true)) as typeof process.stderr.write;
  console.log = (...a: unknown[]) => void (out += a.join(' ') + '\n');
  console.error = (...a: unknown[]) => void (err += a.join(' ') + '\n');
  try {
    const code = await main(args);
    return { code, out, err };
  } finally {
    process.stdout.write = ow;
    process.stderr.write = ew;
    console.log = log;
    console.error = error;
  }
}
