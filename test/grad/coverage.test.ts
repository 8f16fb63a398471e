/**
 * Coverage: every op the graphs emit has a gradient rule or is declared non-differentiable.
 * To cover another graph (a real model), build it in a test and call assertCovered(b, 'name').
 */
import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { Rng } from '../../src/graph/rng';
import { GraphBuildError, Value, aInt } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { assertCovered, uncoveredOps } from '../../src/grad/coverage';
import { GRAD_RULES, NON_DIFFERENTIABLE } from '../../src/grad/registry';
import { ljLoss } from '../../src/losses/lj';
import { Feed, openGraph } from '../helpers/run';

const small = (scale: number) => (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal() * scale);
const ones = (_rng: Rng, n: number) => new Float32Array(n).fill(1);
const zeros = (_rng: Rng, n: number) => new Float32Array(n);

function linear(b: GraphBuilder, x: Value, inDim: number, outDim: number): Value {
  return b.add(b.matmul(x, b.param('weight', [inDim, outDim], small(0.3))), b.param('bias', [outDim], small(0.1)));
}

/**
 * A small attention block + MLP head with cross-entropy, and both LJ forms: on its (b, l, d)
 * tokens and on (b, d) pooled features with a symbolic batch; plus a static-l LJ on an input.
 */
function buildGraph(): { b: GraphBuilder; x: Value; labels: Value; feats: Value; loss: Value } {
  const b = new GraphBuilder({ seed: 3 });
  const L = 4, D = 8, H = 2, hd = D / H, K = 3;
  const x = b.input('input', 'float32', ['batch', L, D]);
  const labels = b.input('labels', 'int64', ['batch']);
  const feats = b.input('feats', 'float32', [2, 5, 6]);

  const tokens = b.scope('blocks', () =>
    b.scope(0, () => {
      const h = b.scope('norm1', () => b.layerNorm(x, b.param('weight', [D], ones), b.param('bias', [D], zeros)));
      const qkv = b.scope('attn', () => b.scope('qkv', () => linear(b, h, D, 3 * D)));
      const qkv5 = b.reshape(qkv, [-1, L, 3, H, hd]);
      const part = (i: number) => b.squeeze(b.slice(qkv5, [i], [i + 1], [2]), [2]);
      const q = b.transpose(part(0), [0, 2, 1, 3]);
      const kT = b.transpose(part(1), [0, 2, 3, 1]);
      const v = b.transpose(part(2), [0, 2, 1, 3]);
      const attn = b.softmax(b.div(b.matmul(q, kT), Math.sqrt(hd)), -1);
      const o = b.reshape(b.transpose(b.matmul(attn, v), [0, 2, 1, 3]), [0, L, D]);
      const x1 = b.add(x, b.scope('attn', () => b.scope('proj', () => linear(b, o, D, D))));
      const h2 = b.scope('norm2', () => b.layerNorm(x1, b.param('weight', [D], ones), b.param('bias', [D], zeros)));
      const g = b.scope('fc1', () => linear(b, h2, D, 2 * D));
      const gelu = b.mul(b.mul(g, b.add(b.erf(b.mul(g, Math.SQRT1_2)), 1)), 0.5);
      return b.add(x1, b.scope('fc2', () => linear(b, gelu, 2 * D, D)));
    }),
  );
  const pooled = b.reduceMean(tokens, [1], false); // (batch, D)
  const hidden = b.scope('head', () => b.relu(b.gemm(pooled, b.param('weight', [K, D], small(0.3)), b.param('bias', [K], small(0.1)), { transB: true })));
  const logits = b.sigmoid(b.tanh(hidden));
  const logp = b.logSoftmax(logits, -1);
  const ce = b.neg(b.reduceMean(b.reduceSum(b.mul(b.oneHot(labels, K), logp), [-1], false), null, false));
  const pred = b.op('ArgMax', [logits], { axis: aInt(1), keepdims: aInt(0) });
  b.output(b.reduceSum(b.cast(b.equal(pred, labels), 'float32'), null, false), 'correct');

  const ljTokens = ljLoss(b, tokens, { sigma: 1, n: 6 }, 'tokens'); // static l = 4, symbolic batch
  const ljBatch = ljLoss(b, pooled, { sigma: 0.5, n: 6, variant: 'adaptive' }, 'batch'); // symbolic particles
  const ljFeats = ljLoss(b, feats, { sigma: 1, n: 2 }, 'tokens'); // static (2, 5, 6)
  const loss = b.op('Sum', [ce, ljTokens, ljBatch, ljFeats]);
  b.output(loss, 'loss');
  return { b, x, labels, feats, loss };
}

describe('gradient coverage', () => {
  it('the LJ losses (tokens with static l, batch with a symbolic batch) and an attention/MLP graph have no uncovered ops', () => {
    const { b } = buildGraph();
    const ops = new Set(b.nodes.map((n) => n.opType));
    // The graph really contains what it is meant to cover.
    for (const op of ['LayerNormalization', 'MatMul', 'Gemm', 'Softmax', 'LogSoftmax', 'Erf', 'OneHot', 'ArgMax', 'ReduceL2', 'Clip', 'Where', 'EyeLike', 'ConstantOfShape', 'Max', 'Slice', 'Squeeze']) {
      expect(ops.has(op), `graph contains ${op}`).to.equal(true);
    }
    expect(uncoveredOps(b)).to.deep.equal([]);
    expect(() => assertCovered(b, 'coverage graph')).not.to.throw();
  });

  it('its backward pass builds and runs on onnxruntime-node with finite gradients', async () => {
    const { b, x, labels, feats, loss } = buildGraph();
    const params = b.params.map((p) => p.value);
    const grads = backward(b, loss, [...params, x, feats]);
    grads.forEach((g, i) => {
      expect(g, `gradient ${i}`).to.not.equal(null);
      b.output(g!, `grad_${i}`);
    });
    const run = await openGraph(b);
    const rng = new Rng(7);
    const batch = 3;
    const feeds = new Map<Value, Feed>([
      [x, { data: Float32Array.from({ length: batch * 4 * 8 }, () => rng.normal()), dims: [batch, 4, 8] }],
      [labels, { data: BigInt64Array.from([0n, 2n, 1n]), dims: [batch] }],
      [feats, Float32Array.from({ length: 60 }, () => rng.normal())],
    ]);
    const out = await run(feeds);
    expect(Number.isFinite(out.loss.data[0] as number)).to.equal(true);
    grads.forEach((g, i) => {
      const t = out[`grad_${i}`];
      const want = g!.shape.map((d) => (typeof d === 'number' ? d : batch));
      expect(Array.from(t.dims), `shape of gradient ${i}`).to.deep.equal(want);
      expect(Array.from(t.data as Float32Array).every(Number.isFinite), `gradient ${i} is finite`).to.equal(true);
    });
  });

  it('reports an op with no rule (a made-up Foo, and Cos) by op type and node name', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const foo = b.scope('blocks', () => b.scope(0, () => b.op('Foo', [x], {}, { shapes: [[2, 3]] })));
    const cos = b.op('Cos', [foo], {}, { shapes: [[2, 3]] });
    b.reduceSum(b.relu(cos), null, false);
    const bad = uncoveredOps(b);
    expect(bad).to.deep.equal([
      { opType: 'Foo', node: foo.producer!.name },
      { opType: 'Cos', node: cos.producer!.name },
    ]);
    expect(foo.producer!.name).to.match(/^blocks\.0\/Foo_/);
    expect(() => assertCovered(b, 'toy graph')).to.throw(GraphBuildError, /toy graph: 2 op type\(s\).*\n.*Foo: blocks\.0\/Foo_\d+\n.*Cos: Cos_\d+/);
  });

  it('backward() throws on such an op, naming the op type and the node', () => {
    for (const op of ['Foo', 'Cos']) {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [2, 3]);
      const y = b.scope('blocks', () => b.scope(0, () => b.op(op, [x], {}, { shapes: [[2, 3]] })));
      const loss = b.reduceSum(b.mul(y, y), null, false);
      const name = y.producer!.name;
      expect(() => backward(b, loss, [x])).to.throw(GraphBuildError, new RegExp(`op ${op}\\b.*node ${name.replace(/[./]/g, '\\$&')}`));
    }
  });

  it('an uncovered op off the gradient path does not stop backward(), but uncoveredOps still lists it', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    const frozen = b.input('frozen', 'float32', [2, 3]);
    const c = b.op('Cos', [frozen], {}, { shapes: [[2, 3]] });
    const loss = b.reduceSum(b.mul(x, c), null, false);
    expect(() => backward(b, loss, [x])).not.to.throw();
    expect(uncoveredOps(b).map((u) => u.opType)).to.deep.equal(['Cos']);
  });

  it('an op from another domain is reported even when an ai.onnx op of that name has a rule', () => {
    const b = new GraphBuilder();
    const x = b.input('x', 'float32', [2, 3]);
    b.op('Add', [x, x], {}, { domain: 'com.example' });
    expect(uncoveredOps(b)).to.deep.equal([{ opType: 'com.example.Add', node: b.nodes[0].name }]);
  });

  it('no op is both given a rule and declared non-differentiable', () => {
    for (const op of NON_DIFFERENTIABLE) expect(GRAD_RULES.has(op), op).to.equal(false);
  });
});
