import { expect } from 'chai';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import * as zlib from 'node:zlib';
import { DataError, encodeIdx, readIdx, readIdxImages, readIdxLabels, writeIdx } from '../../src/data/idx';

const ROOT = path.resolve(__dirname, '..', '..', '..');
const SUBSET = path.join(ROOT, 'data', 'fashion-mnist-subset');

/** Runs fn, expects a DataError, returns its message. */
function dataError(fn: () => unknown): string {
  try {
    fn();
  } catch (e) {
    expect(e).to.be.instanceOf(DataError);
    return (e as Error).message;
  }
  throw new Error('expected a DataError');
}

describe('data/idx', () => {
  let tmp: string;
  before(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'ljtrain-idx-'));
  });
  after(() => fs.rmSync(tmp, { recursive: true, force: true }));

  it('reads gzipped and raw copies of the same file identically', () => {
    for (const stem of ['train-labels-idx1-ubyte', 't10k-images-idx3-ubyte']) {
      const gz = path.join(SUBSET, stem + '.gz');
      const raw = path.join(tmp, stem);
      fs.writeFileSync(raw, zlib.gunzipSync(fs.readFileSync(gz)));
      const a = readIdx(gz);
      const b = readIdx(raw);
      expect(b.dims).to.deep.equal(a.dims);
      expect(Buffer.from(b.data).equals(Buffer.from(a.data))).to.equal(true);
    }
    const im = readIdxImages(path.join(tmp, 't10k-images-idx3-ubyte'));
    expect([im.n, im.rows, im.cols]).to.deep.equal([1000, 28, 28]);
  });

  it('detects gzip by magic bytes, not by the file name', () => {
    const f = path.join(tmp, 'labels-without-suffix');
    fs.copyFileSync(path.join(SUBSET, 'train-labels-idx1-ubyte.gz'), f);
    expect(readIdxLabels(f).n).to.equal(6000);
  });

  it('round-trips encodeIdx / writeIdx', () => {
    const data = Uint8Array.from({ length: 2 * 3 * 4 }, (_, i) => i * 7);
    for (const name of ['rt', 'rt.gz']) {
      const f = path.join(tmp, name);
      writeIdx(f, [2, 3, 4], data);
      const im = readIdxImages(f);
      expect([im.n, im.rows, im.cols]).to.deep.equal([2, 3, 4]);
      expect(Array.from(im.data)).to.deep.equal(Array.from(data));
    }
    expect(fs.readFileSync(path.join(tmp, 'rt.gz'))[0]).to.equal(0x1f);
  });

  it('names a missing file', () => {
    const f = path.join(tmp, 'nope-idx1-ubyte');
    const msg = dataError(() => readIdxLabels(f));
    expect(msg).to.contain(f).and.contain('not found');
  });

  it('names a truncated raw file and says it is truncated', () => {
    const f = path.join(tmp, 'trunc-images');
    fs.writeFileSync(f, encodeIdx([5, 28, 28], new Uint8Array(5 * 784)).subarray(0, 16 + 4 * 784 + 100));
    const msg = dataError(() => readIdxImages(f));
    expect(msg).to.contain(f).and.contain('truncated').and.contain(String(5 * 784));
  });

  it('names a file longer than its header says', () => {
    const f = path.join(tmp, 'long-labels');
    fs.writeFileSync(f, Buffer.concat([encodeIdx([3], Uint8Array.of(1, 2, 3)), Buffer.from([9])]));
    expect(dataError(() => readIdxLabels(f))).to.contain(f).and.contain('longer than its header');
  });

  it('names a truncated gzip file', () => {
    const f = path.join(tmp, 'trunc.gz');
    const gz = fs.readFileSync(path.join(SUBSET, 't10k-labels-idx1-ubyte.gz'));
    fs.writeFileSync(f, gz.subarray(0, gz.length >> 1));
    const msg = dataError(() => readIdxLabels(f));
    expect(msg).to.contain(f).and.contain('gzip');
  });

  it('names a corrupt gzip file', () => {
    const f = path.join(tmp, 'corrupt.gz');
    const gz = Buffer.from(fs.readFileSync(path.join(SUBSET, 't10k-labels-idx1-ubyte.gz')));
    for (let i = 20; i < 60; i++) gz[i] ^= 0xa5;
    fs.writeFileSync(f, gz);
    expect(dataError(() => readIdxLabels(f))).to.contain(f).and.contain('corrupt');
  });

  it('rejects a wrong magic number (labels given as images), naming both magics', () => {
    const f = path.join(SUBSET, 'train-labels-idx1-ubyte.gz');
    const msg = dataError(() => readIdxImages(f));
    expect(msg).to.contain(f).and.contain('0x00000801').and.contain('0x00000803');
  });

  it('rejects a file that is not IDX at all', () => {
    const f = path.join(tmp, 'text');
    fs.writeFileSync(f, 'hello, this is not an IDX file');
    expect(dataError(() => readIdxLabels(f))).to.contain(f).and.contain('magic');
    expect(dataError(() => readIdx(f))).to.contain(f).and.contain('not an IDX header');
  });

  it('rejects a folder and an empty file', () => {
    expect(dataError(() => readIdx(tmp))).to.contain(tmp);
    const f = path.join(tmp, 'empty');
    fs.writeFileSync(f, '');
    expect(dataError(() => readIdx(f))).to.contain(f).and.contain('too short');
  });
});
