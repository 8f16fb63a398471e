import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, encodeIdx } from '../../src/data/idx';
import {
  FASHION_MNIST_FILES,
  FASHION_MNIST_NORMALIZE,
  fashionMnistSearchPath,
  loadFashionMnist,
  locateFashionMnist,
} from '../../src/data/fashion-mnist';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SUBSET = path.join(ROOT, 'data', 'fashion-mnist-subset');

function dataError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('expected a DataError');
}

/** Labels straight from the gzipped file, without the project's reader. */
function rawLabels(file: string): Buffer {
  return zlib.gunzipSync(fs.readFileSync(file)).subarray(8);
}

describe('data/fashion-mnist', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-fmnist-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  describe('the embedded subset', () => {
    let d: ReturnType<typeof loadFashionMnist>;
    before(() => {
      d = loadFashionMnist(SUBSET);
    });

    it('has 6000 train and 1000 test samples of 1x28x28 and 10 classes', () => {
      expect(d.source).to.equal(SUBSET);
      expect(d.embedded).to.equal(true);
      for (const [s, n] of [[d.train, 6000], [d.test, 1000]] as const) {
        expect(s.n).to.equal(n);
        expect(s.images.length).to.equal(n * 28 * 28);
        expect(s.labels.length).to.equal(n);
        expect([s.channels, s.height, s.width, s.classes]).to.deep.equal([1, 28, 28, 10]);
        expect(s.normalize).to.equal(FASHION_MNIST_NORMALIZE);
      }
    });

    it('has labels in 0..9 with every class present', () => {
      for (const s of [d.train, d.test]) {
        const counts = new Array(10).fill(0);
        for (const l of s.labels) counts[l]++;
        expect(counts.reduce((a, b) => a + b)).to.equal(s.n);
        expect(Math.min(...counts)).to.be.greaterThan(s.n / 20);
      }
    });

    it('has pixels spanning 0..255 (real images, not blank)', () => {
      let lo = 255;
      let hi = 0;
      let sum = 0;
      for (const p of d.train.images) {
        if (p < lo) lo = p;
        if (p > hi) hi = p;
        sum += p;
      }
      expect([lo, hi]).to.deep.equal([0, 255]);
      const mean = sum / d.train.images.length / 255;
      expect(mean).to.be.closeTo(0.286, 0.02);
    });

    it('has the first labels of the raw files (9 0 0 3 0 2 7 2 5 5 / 9 2 1 1 6 1 4 6 5 7)', () => {
      const trainRaw = rawLabels(path.join(SUBSET, 'train-labels-idx1-ubyte.gz'));
      const testRaw = rawLabels(path.join(SUBSET, 't10k-labels-idx1-ubyte.gz'));
      expect(Array.from(d.train.labels.subarray(0, 10))).to.deep.equal(Array.from(trainRaw.subarray(0, 10)));
      expect(Array.from(d.test.labels.subarray(0, 10))).to.deep.equal(Array.from(testRaw.subarray(0, 10)));
      expect(Array.from(d.train.labels.subarray(0, 10))).to.deep.equal([9, 0, 0, 3, 0, 2, 7, 2, 5, 5]);
      expect(Array.from(d.test.labels.subarray(0, 10))).to.deep.equal([9, 2, 1, 1, 6, 1, 4, 6, 5, 7]);
    });

    it('matches the start of the full set where it is installed', function () {
      const full = '/usr/share/datasets/fashion-mnist/train-labels-idx1-ubyte.gz';
      if (!fs.existsSync(full)) this.skip();
      expect(Buffer.from(d.train.labels).equals(rawLabels(full).subarray(0, 6000))).to.equal(true);
    });
  });

  it('reads a raw (ungzipped) copy of the folder the same', () => {
    const raw = path.join(tmp, 'raw');
    fs.mkdirSync(raw);
    for (const stem of Object.values(FASHION_MNIST_FILES)) {
      fs.writeFileSync(path.join(raw, stem), zlib.gunzipSync(fs.readFileSync(path.join(SUBSET, stem + '.gz'))));
    }
    const a = loadFashionMnist(SUBSET);
    const b = loadFashionMnist(raw);
    expect(b.embedded).to.equal(false);
    expect(Buffer.from(b.train.images).equals(Buffer.from(a.train.images))).to.equal(true);
    expect(Buffer.from(b.test.labels).equals(Buffer.from(a.test.labels))).to.equal(true);
  });

  it('errors, naming both files, when image and label counts differ', () => {
    const dir = path.join(tmp, 'mismatch');
    fs.mkdirSync(dir);
    for (const stem of Object.values(FASHION_MNIST_FILES)) fs.copyFileSync(path.join(SUBSET, stem + '.gz'), path.join(dir, stem + '.gz'));
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.testLabels), encodeIdx([999], new Uint8Array(999)));
    const msg = dataError(() => loadFashionMnist(dir));
    expect(msg).to.contain(path.join(dir, 't10k-images-idx3-ubyte.gz')).and.contain(path.join(dir, 't10k-labels-idx1-ubyte'));
    expect(msg).to.contain('1000').and.contain('999');
  });

  it('errors on labels outside 0..9 and on images that are not 28x28', () => {
    const dir = path.join(tmp, 'badvalues');
    fs.mkdirSync(dir);
    for (const stem of Object.values(FASHION_MNIST_FILES)) fs.copyFileSync(path.join(SUBSET, stem + '.gz'), path.join(dir, stem + '.gz'));
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.testLabels), encodeIdx([1000], new Uint8Array(1000).fill(10)));
    expect(dataError(() => loadFashionMnist(dir))).to.contain('label 10');
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.testLabels), encodeIdx([2], new Uint8Array(2)));
    fs.writeFileSync(path.join(dir, FASHION_MNIST_FILES.testImages), encodeIdx([2, 32, 32], new Uint8Array(2 * 32 * 32)));
    expect(dataError(() => loadFashionMnist(dir))).to.contain('32x32');
  });

  it('errors when an explicit folder is missing or lacks files', () => {
    expect(dataError(() => loadFashionMnist(path.join(tmp, 'absent')))).to.contain('not found');
    const partial = path.join(tmp, 'partial');
    fs.mkdirSync(partial);
    fs.copyFileSync(path.join(SUBSET, 'train-labels-idx1-ubyte.gz'), path.join(partial, 'train-labels-idx1-ubyte.gz'));
    const msg = dataError(() => loadFashionMnist(partial));
    expect(msg).to.contain(partial).and.contain('train-images-idx3-ubyte').and.contain('t10k-labels-idx1-ubyte');
    expect(msg).not.to.contain('train-labels');
  });

  describe('locating', () => {
    it('searches data/fashion-mnist (project root and cwd), then the system folder, then the subset', () => {
      const sp = fashionMnistSearchPath();
      expect(sp[0]).to.equal(path.join(ROOT, 'data', 'fashion-mnist'));
      const sys = sp.indexOf('/usr/share/datasets/fashion-mnist');
      const sub = sp.indexOf(SUBSET);
      expect(sys).to.be.greaterThan(0);
      expect(sub).to.be.greaterThan(sys);
      expect(sp).to.include(path.resolve(process.cwd(), 'data', 'fashion-mnist'));
    });

    it('skips absent and empty folders and takes the first complete one', () => {
      const empty = path.join(tmp, 'empty');
      fs.mkdirSync(empty, { recursive: true });
      expect(locateFashionMnist(undefined, [path.join(tmp, 'absent'), empty, SUBSET])).to.equal(SUBSET);
    });

    it('stops at an incomplete folder rather than silently using the subset', () => {
      const partial = path.join(tmp, 'partial2');
      fs.mkdirSync(partial);
      fs.writeFileSync(path.join(partial, 'train-images-idx3-ubyte'), '');
      expect(dataError(() => locateFashionMnist(undefined, [partial, SUBSET]))).to.contain(partial).and.contain('incomplete');
    });

    it('says where it looked when nothing is found', () => {
      const msg = dataError(() => locateFashionMnist(undefined, [path.join(tmp, 'x'), path.join(tmp, 'y')]));
      expect(msg).to.contain(path.join(tmp, 'x')).and.contain('fetch-fashion-mnist');
    });

    it('loads something without a folder (full set or subset)', () => {
      const d = loadFashionMnist();
      expect([6000, 60000]).to.include(d.train.n);
      expect(d.train.n).to.equal(d.embedded ? 6000 : 60000);
    });
  });
});
