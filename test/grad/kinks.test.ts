/**
 * Hand cases at kinks, where a finite difference means nothing: the gradient each rule picks there,
 * checked exactly against torch's convention.
 */
import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { Value } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { Feed, openGraph } from '../helpers/run';

interface KinkIn {
  shape: number[];
  data: number[];
}

/** Gradients of sum(f(x) * w) (w = ones unless given) with respect to every input, in float64. */
async function gradsAt(ins: KinkIn[], f: (b: GraphBuilder, xs: Value[]) => Value, w?: number[]): Promise<number[][]> {
  const b = new GraphBuilder();
  const xs = ins.map((s, i) => b.input(`x${i}`, 'float64', s.shape));
  const y = f(b, xs);
  const shape = y.shape as number[];
  const n = shape.reduce((p, q) => p * q, 1);
  const loss = b.reduceSum(b.mul(y, b.constant('float64', shape, w ?? new Array(n).fill(1))), null, false);
  b.output(loss, 'loss');
  backward(b, loss, xs).forEach((g, i) => b.output(g!, `grad_${i}`));
  const run = await openGraph(b, { level: 'basic' });
  const feeds = new Map<Value, Feed>(xs.map((x, i) => [x, Float64Array.from(ins[i].data)]));
  const out = await run(feeds);
  return xs.map((_, i) => Array.from(out[`grad_${i}`].data as Float64Array));
}

function expectClose(actual: number[], expected: number[], what: string): void {
  expect(actual.length, what).to.equal(expected.length);
  actual.forEach((a, i) => {
    expect(Number.isNaN(a), `${what}[${i}] is NaN`).to.equal(false);
    expect(a, `${what}[${i}]`).to.be.closeTo(expected[i], 1e-12);
  });
}

describe('gradient rules: hand cases at kinks (torch conventions)', () => {
  it("Relu at exactly 0 has gradient 0 (torch: relu'(0) = 0)", async () => {
    const [g] = await gradsAt([{ shape: [5], data: [-1, 0, 2, -0, 0.5] }], (b, [x]) => b.relu(x));
    expectClose(g, [0, 0, 1, 0, 1], 'dRelu');
  });

  it('Clip passes the gradient at x = min and x = max (inclusive, as torch.clamp)', async () => {
    const [g] = await gradsAt([{ shape: [6], data: [-1, 1, -2, 2, 0.5, -1.0000001] }], (b, [x]) => b.clip(x, -1, 1));
    expectClose(g, [1, 1, 0, 0, 1, 0], 'dClip');
  });

  it('Clip with one side open: the bound itself is inclusive', async () => {
    const [gMin] = await gradsAt([{ shape: [3], data: [0.25, 0.2, 0.3] }], (b, [x]) => b.clip(x, 0.25, null));
    expectClose(gMin, [1, 0, 1], 'dClip(min only)');
    const [gMax] = await gradsAt([{ shape: [3], data: [0.25, 0.2, 0.3] }], (b, [x]) => b.clip(x, null, 0.25));
    expectClose(gMax, [1, 1, 0], 'dClip(max only)');
  });

  it('ReduceMax with ties splits the gradient evenly among the tied maxima (as torch.amax)', async () => {
    const x = { shape: [3, 3], data: [3, 1, 3, 2, 2, 2, 0, 5, 1] };
    const third = 1 / 3;
    const [g0] = await gradsAt([x], (b, [v]) => b.reduceMax(v, [1], false), [2, 3, 1]);
    expectClose(g0, [1, 0, 1, third * 3, third * 3, third * 3, 0, 1, 0], 'dReduceMax axis 1 keepdims 0');
    const [g1] = await gradsAt([x], (b, [v]) => b.reduceMax(v, [1], true));
    expectClose(g1, [0.5, 0, 0.5, third, third, third, 0, 1, 0], 'dReduceMax axis 1 keepdims 1');
    const [g2] = await gradsAt([{ shape: [3, 3], data: [3, 1, 3, 2, 2, 3, 0, 5, 1] }], (b, [v]) => b.reduceMax(v, [0], false));
    expectClose(g2, [1, 0, 0.5, 0, 0, 0.5, 0, 1, 0], 'dReduceMax axis 0');
    const [g3] = await gradsAt([{ shape: [2, 2], data: [3, 1, 3, 0] }], (b, [v]) => b.reduceMax(v, null, false));
    expectClose(g3, [0.5, 0, 0.5, 0], 'dReduceMax all axes');
  });

  it('Max/Min with equal inputs split the gradient 0.5/0.5 (as torch.maximum/minimum)', async () => {
    const a = { shape: [3], data: [1, 2, 3] };
    const q = { shape: [3], data: [1, 0, 5] };
    const [da, dq] = await gradsAt([a, q], (b, [x, y]) => b.max(x, y));
    expectClose(da, [0.5, 1, 0], 'dMax/da');
    expectClose(dq, [0.5, 0, 1], 'dMax/db');
    const [ma, mq] = await gradsAt([a, q], (b, [x, y]) => b.min(x, y));
    expectClose(ma, [0.5, 0, 1], 'dMin/da');
    expectClose(mq, [0.5, 1, 0], 'dMin/db');
  });

  it('Max with ties under broadcasting sums the halves back to the broadcast input', async () => {
    const [da, dq] = await gradsAt([{ shape: [2, 2], data: [1, 2, 1, 0] }, { shape: [2], data: [1, 2] }], (b, [x, y]) => b.max(x, y));
    expectClose(da, [0.5, 0.5, 0.5, 0], 'dMax/da');
    expectClose(dq, [1, 1.5], 'dMax/db');
  });

  it('ReduceL2 of an all-zero row has gradient 0, not NaN (as torch.linalg.norm)', async () => {
    const [g] = await gradsAt([{ shape: [2, 3], data: [0, 0, 0, 3, 4, 0] }], (b, [x]) => b.reduceL2(x, [1], false));
    expectClose(g, [0, 0, 0, 0.6, 0.8, 0], 'dReduceL2 axis 1');
    const [gk] = await gradsAt([{ shape: [2, 3], data: [0, 0, 0, 3, 4, 0] }], (b, [x]) => b.reduceL2(x, [-1], true), [2, 1]);
    expectClose(gk, [0, 0, 0, 0.6, 0.8, 0], 'dReduceL2 keepdims 1');
    const [gAll] = await gradsAt([{ shape: [2, 2], data: [0, 0, 0, 0] }], (b, [x]) => b.reduceL2(x, null, false));
    expectClose(gAll, [0, 0, 0, 0], 'dReduceL2 all axes of zeros');
  });
});
