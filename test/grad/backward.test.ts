import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { GraphBuildError, Node, Value } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { ljLoss } from '../../src/losses/lj';
import { decodeModel, encodeModel } from '../../src/onnx/proto';
import { runGraph } from '../helpers/run';

/** Nodes whose outputs reach no graph output (onnxruntime would still run them). */
function unusedNodes(b: GraphBuilder): Node[] {
  const need = new Set<Value>(b.outputs);
  const live = new Set<Node>();
  for (let i = b.nodes.length - 1; i >= 0; i--) {
    const n = b.nodes[i];
    if (!n.outputs.some((o) => need.has(o))) continue;
    live.add(n);
    for (const v of n.inputs) if (v) need.add(v);
  }
  return b.nodes.filter((n) => !live.has(n));
}

describe('grad/backward', () => {
  it('emits no nodes that the returned gradients do not need (no dX for a data input)', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', ['batch', 6]);
    const w = b.input('w', 'float32', [6, 4]);
    const loss = b.reduceMean(b.mul(b.matmul(x, w), 3), null, false);
    b.output(loss, 'loss');
    const [gw] = backward(b, loss, [w]);
    b.output(gw!, 'gw');
    expect(unusedNodes(b).map((n) => n.name)).to.deep.equal([]);
    // One MatMul forward, one for dW; none for dX.
    expect(b.nodes.filter((n) => n.opType === 'MatMul')).to.have.length(2);
  });

  it('leaves no unused nodes or initializers behind the LJ loss', () => {
    const b = new GraphBuilder();
    const f = b.input('f', 'float32', ['batch', 5, 8]);
    const loss = ljLoss(b, f, {}, 'tokens');
    b.output(loss, 'loss');
    b.output(backward(b, loss, [f])[0]!, 'g');
    expect(unusedNodes(b).map((n) => `${n.name}`)).to.deep.equal([]);
    const m = decodeModel(encodeModel(b.toModel()));
    const used = new Set(m.graph!.node!.flatMap((n) => n.input ?? []));
    for (const init of m.graph!.initializer!) expect(used.has(init.name!), `initializer ${init.name} is used`).to.equal(true);
  });

  it('two backward passes on one builder keep each other\'s gradients', async () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float64', [3]);
    const l1 = b.reduceSum(b.mul(x, x), null, false);
    const l2 = b.reduceSum(b.exp(x), null, false);
    const [g1] = backward(b, l1, [x]);
    const [g2] = backward(b, l2, [x]);
    b.output(g1!, 'g1');
    b.output(g2!, 'g2');
    const out = await runGraph(b, new Map([[x, Float64Array.from([1, -2, 0.5])]]));
    expect(Array.from(out.g1.data as Float64Array)).to.deep.equal([2, -4, 1]);
    Array.from(out.g2.data as Float64Array).forEach((g, i) => expect(g).to.be.closeTo(Math.exp([1, -2, 0.5][i]), 1e-12));
  });

  it('gives null for a wrt value the loss does not depend on', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3]);
    const y = b.input('y', 'float32', [3]);
    const [gx, gy] = backward(b, b.reduceSum(b.exp(x), null, false), [x, y]);
    expect(gx).to.not.equal(null);
    expect(gy).to.equal(null);
  });

  it("refuses a gradient through LayerNormalization's Mean/InvStdDev outputs rather than dropping it", () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 4]);
    const s = b.input('s', 'float32', [4]);
    const [y, mean] = b.node('LayerNormalization', [x, s], {}, { outputs: 2 });
    const loss = b.add(b.reduceSum(y, null, false), b.reduceSum(mean, null, false));
    expect(() => backward(b, loss, [x, s])).to.throw(GraphBuildError, /Mean\/InvStdDev.*LayerNormalization_\d+/);
  });

  it('refuses a non-scalar loss without a seed, and an integer loss', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [3]);
    expect(() => backward(b, b.exp(x), [x])).to.throw(GraphBuildError, /not a scalar/);
    const i = b.input('i', 'int64', []);
    expect(() => backward(b, i, [x])).to.throw(GraphBuildError, /not a float/);
  });
});
