import { expect } from 'chai';
import * as path from 'node:path';
import { Rng } from '../../src/graph/rng';
import type { Dataset } from '../../src/data/dataset';
import { Batch, epochBatches, epochPlan, FASHION_MNIST_MEAN, FASHION_MNIST_STD, numBatches } from '../../src/data/batches';
import { loadFashionMnist } from '../../src/data/fashion-mnist';

const SUBSET = path.resolve(__dirname, '..', '..', '..', 'data', 'fashion-mnist-subset');

/** A tiny dataset whose pixel values encode (sample, channel, row, col). */
function synthetic(n: number, C: number, H: number, W: number): Dataset {
  const images = new Uint8Array(n * C * H * W);
  for (let i = 0; i < images.length; i++) images[i] = (i * 31 + 7) % 256;
  const labels = Uint8Array.from({ length: n }, (_, i) => i % 10);
  return { images, labels, n, channels: C, height: H, width: W, classes: 10 };
}

function all(it: Iterable<Batch>): Batch[] {
  return [...it];
}

describe('data/batches', () => {
  let ds: Dataset;
  before(() => {
    ds = loadFashionMnist(SUBSET).test;
  });

  it('exports the Fashion-MNIST statistics', () => {
    expect(FASHION_MNIST_MEAN).to.equal(0.286);
    expect(FASHION_MNIST_STD).to.equal(0.353);
  });

  it('yields NCHW float32 normalised as (p/255 − mean)/std with int64 labels, in order without shuffle', () => {
    const [b] = all(epochBatches(ds, { batchSize: 4 }));
    expect(b.size).to.equal(4);
    expect(b.x).to.be.instanceOf(Float32Array);
    expect(b.x.length).to.equal(4 * 1 * 28 * 28);
    expect(b.y).to.be.instanceOf(BigInt64Array);
    expect(Array.from(b.y)).to.deep.equal([9n, 2n, 1n, 1n]);
    expect(Array.from(b.indices)).to.deep.equal([0, 1, 2, 3]);
    for (const i of [0, 100, 784 + 400, 3 * 784 + 783]) {
      const p = ds.images[i];
      expect(b.x[i]).to.be.closeTo((p / 255 - 0.286) / 0.353, 1e-6);
    }
  });

  it('takes a caller-given normalisation, per channel', () => {
    const s = synthetic(3, 3, 2, 2);
    const [b] = all(epochBatches(s, { batchSize: 3, normalize: { mean: [0.1, 0.2, 0.3], std: [0.5, 0.25, 2] } }));
    for (let i = 0; i < s.images.length; i++) {
      const c = Math.floor(i / 4) % 3;
      expect(b.x[i]).to.be.closeTo((s.images[i] / 255 - [0.1, 0.2, 0.3][c]) / [0.5, 0.25, 2][c], 1e-6);
    }
    const [plain] = all(epochBatches(s, { batchSize: 3 })); // no dataset stats: p/255
    expect(plain.x[5]).to.be.closeTo(s.images[5] / 255, 1e-7);
    expect(() => epochBatches(s, { batchSize: 3, normalize: { mean: [0, 0], std: 1 } })).to.throw(/3 channels/);
  });

  it('yields the last partial batch, or drops it with dropLast', () => {
    const b = all(epochBatches(ds, { batchSize: 128 }));
    expect(b.map((x) => x.size)).to.deep.equal([128, 128, 128, 128, 128, 128, 128, 104]);
    expect(b[7].x.length).to.equal(104 * 784);
    expect(b[7].y.length).to.equal(104);
    expect(numBatches(1000, 128)).to.equal(8);
    const d = all(epochBatches(ds, { batchSize: 128, dropLast: true }));
    expect(d.length).to.equal(7);
    expect(d.every((x) => x.size === 128)).to.equal(true);
    expect(numBatches(1000, 128, true)).to.equal(7);
    expect(all(epochBatches(ds, { batchSize: 100, dropLast: true })).length).to.equal(10);
  });

  it('is deterministic given the seed, and differs across seeds', () => {
    const opts = { batchSize: 64, shuffle: true, flip: true };
    const a = all(epochBatches(ds, { ...opts, rng: new Rng(7) }));
    const b = all(epochBatches(ds, { ...opts, rng: new Rng(7) }));
    const c = all(epochBatches(ds, { ...opts, rng: new Rng(8) }));
    expect(a.length).to.equal(b.length);
    for (let i = 0; i < a.length; i++) {
      expect(Buffer.from(a[i].x.buffer).equals(Buffer.from(b[i].x.buffer))).to.equal(true);
      expect(Array.from(a[i].y)).to.deep.equal(Array.from(b[i].y));
      expect(Array.from(a[i].indices)).to.deep.equal(Array.from(b[i].indices));
    }
    expect(Array.from(a[0].indices)).not.to.deep.equal(Array.from(c[0].indices));
  });

  it('visits every sample exactly once per epoch when shuffling', () => {
    const seen = new Uint8Array(ds.n);
    for (const b of epochBatches(ds, { batchSize: 77, shuffle: true, rng: new Rng(1) })) {
      for (let k = 0; k < b.size; k++) {
        seen[b.indices[k]]++;
        expect(b.y[k]).to.equal(BigInt(ds.labels[b.indices[k]]));
      }
    }
    expect(seen.every((v) => v === 1)).to.equal(true);
  });

  it('draws the whole epoch from the rng at call time: permutation, then one flip per sample', () => {
    const rng = new Rng(3);
    const it = epochBatches(ds, { batchSize: 10, shuffle: true, flip: true, rng });
    const ref = new Rng(3);
    ref.permutation(ds.n);
    for (let i = 0; i < ds.n; i++) ref.next();
    expect(rng.state()).to.deep.equal(ref.state()); // before pulling any batch
    all(it);
    expect(rng.state()).to.deep.equal(ref.state()); // iterating draws nothing more
  });

  it('resumes mid-epoch from the saved rng state with startBatch', () => {
    const saved = new Rng(11).state();
    const full = all(epochBatches(ds, { batchSize: 100, shuffle: true, flip: true, rng: Rng.fromState(saved) }));
    const rest = all(epochBatches(ds, { batchSize: 100, shuffle: true, flip: true, rng: Rng.fromState(saved), startBatch: 6 }));
    expect(rest.length).to.equal(4);
    for (let i = 0; i < 4; i++) expect(Buffer.from(rest[i].x.buffer).equals(Buffer.from(full[6 + i].x.buffer))).to.equal(true);
  });

  it('flip mirrors each row of the image, pixel by pixel', () => {
    const plan = epochPlan(ds.n, { flip: true, rng: new Rng(5) });
    const flippedCount = plan.flips.reduce((a, b) => a + b, 0);
    expect(flippedCount / ds.n).to.be.within(0.43, 0.57); // p = 0.5
    const b = all(epochBatches(ds, { batchSize: ds.n, flip: true, rng: new Rng(5) }))[0];
    expect(Array.from(b.flipped)).to.deep.equal(Array.from(plan.flips));
    const i = b.flipped.indexOf(1);
    const j = b.flipped.indexOf(0);
    const norm = (p: number) => Math.fround((p / 255 - 0.286) / 0.353);
    for (let h = 0; h < 28; h++) {
      for (let w = 0; w < 28; w++) {
        expect(b.x[i * 784 + h * 28 + w]).to.equal(norm(ds.images[i * 784 + h * 28 + (27 - w)]));
        expect(b.x[j * 784 + h * 28 + w]).to.equal(norm(ds.images[j * 784 + h * 28 + w]));
      }
    }
    // and the mirrored image is really different (Fashion-MNIST images are not symmetric)
    let diff = 0;
    for (let k = 0; k < 784; k++) if (b.x[i * 784 + k] !== norm(ds.images[i * 784 + k])) diff++;
    expect(diff).to.be.greaterThan(50);
  });

  it('flips every channel of multi-channel images the same way', () => {
    const s = synthetic(64, 3, 4, 5);
    const rng = new Rng(2);
    const b = all(epochBatches(s, { batchSize: 64, flip: true, rng }))[0];
    for (let k = 0; k < 64; k++) {
      for (let c = 0; c < 3; c++) {
        for (let h = 0; h < 4; h++) {
          for (let w = 0; w < 5; w++) {
            const src = k * 60 + c * 20 + h * 5 + (b.flipped[k] ? 4 - w : w);
            expect(b.x[k * 60 + c * 20 + h * 5 + w]).to.equal(Math.fround(s.images[src] / 255));
          }
        }
      }
    }
  });

  it('asks for an rng when shuffling or flipping and checks batchSize', () => {
    expect(() => epochBatches(ds, { batchSize: 4, shuffle: true })).to.throw(/rng/);
    expect(() => epochBatches(ds, { batchSize: 4, flip: true })).to.throw(/rng/);
    expect(() => epochBatches(ds, { batchSize: 0 })).to.throw(/batchSize/);
  });
});
