import { expect } from 'chai';
import { GraphBuilder } from '../../src/graph/builder';
import { Rng } from '../../src/graph/rng';
import { GraphBuildError, Value, aFloat, aInt } from '../../src/graph/types';
import { backward } from '../../src/grad/backward';
import { MAX_IR_VERSION, MAX_OPSET, decodeModel, encodeModel } from '../../src/onnx/proto';
import { runGraph } from '../helpers/run';

const normal = (rng: Rng, n: number) => Float32Array.from({ length: n }, () => rng.normal() * 0.1);

/** A small recipe with scopes, parameters, literals, attributes and a backward pass. */
function recipe(seed: number): GraphBuilder {
  const b = new GraphBuilder({ seed });
  const x = b.input('input', 'float32', ['batch', 6]);
  const h = b.scope('blocks', () =>
    b.scope(0, () => {
      const w = b.scope('fc', () => b.param('weight', [6, 4], normal));
      const bias = b.scope('fc', () => b.param('bias', [4], normal));
      const y = b.gemm(x, w, bias, { alpha: 0.5, beta: 2 });
      return b.layerNorm(b.relu(b.mul(y, 2)), b.param('ln_weight', [4], normal), b.param('ln_bias', [4], normal), 1e-5, -1);
    }),
  );
  const loss = b.reduceMean(b.mul(h, h), null, false);
  b.output(loss, 'loss');
  const grads = backward(b, loss, b.params.map((p) => p.value));
  grads.forEach((g, i) => b.output(g!, `grad_${b.params[i].value.name}`));
  return b;
}

describe('graph/builder', () => {
  describe('shape errors', () => {
    it('a MatMul shape mismatch throws GraphBuildError naming the scope path and the op', () => {
      const b = new GraphBuilder();
      const a = b.input('a', 'float32', [2, 3]);
      const c = b.input('c', 'float32', [4, 5]);
      let err: unknown;
      try {
        b.scope('blocks', () => b.scope(0, () => b.matmul(a, c)));
      } catch (e) {
        err = e;
      }
      expect(err).to.be.instanceOf(GraphBuildError);
      const msg = (err as Error).message;
      expect(msg).to.include('blocks.0');
      expect(msg).to.include('MatMul');
      expect(msg).to.match(/blocks\.0\/MatMul/);
      expect(msg).to.include('[2,3]').and.include('[4,5]');
    });

    it('the scope is popped after an error, and errors at the root say <root>', () => {
      const b = new GraphBuilder();
      const a = b.input('a', 'float32', [2, 3]);
      expect(() => b.scope('blocks', () => b.add(a, b.input('q', 'float32', [4])))).to.throw(GraphBuildError, /blocks\/Add/);
      expect(b.scopePath).to.equal('');
      expect(() => b.matmul(a, a)).to.throw(GraphBuildError, /<root>\/MatMul/);
    });

    it('an op without shape inference and without explicit shapes is refused, naming the op', () => {
      const b = new GraphBuilder();
      const a = b.input('a', 'float32', [2, 3]);
      expect(() => b.scope('head', () => b.op('Cos', [a]))).to.throw(GraphBuildError, /head\/Cos.*no shape inference/);
    });
  });

  describe('names', () => {
    it('parameter names get their scopes, dotted', () => {
      const b = new GraphBuilder();
      const w = b.scope('blocks', () => b.scope(0, () => b.scope('attn', () => b.scope('qkv', () => b.param('weight', [2, 2], normal)))));
      expect(w.name).to.equal('blocks.0.attn.qkv.weight');
      expect(b.param('bias', [2], normal).name).to.equal('bias');
      expect(b.params.map((p) => p.value.name)).to.deep.equal(['blocks.0.attn.qkv.weight', 'bias']);
    });

    it('node names carry the scope path; a duplicate parameter name is refused', () => {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [2]);
      const y = b.scope('blocks', () => b.scope(1, () => b.relu(x)));
      expect(y.producer!.name).to.match(/^blocks\.1\/Relu_\d+$/);
      expect(y.producer!.scope).to.equal('blocks.1');
      b.scope('fc', () => b.param('weight', [2], normal));
      expect(() => b.scope('fc', () => b.param('weight', [2], normal))).to.throw(GraphBuildError, /duplicate value name 'fc.weight'/);
    });
  });

  describe('constants', () => {
    it('the same literal gives the same cached Value', () => {
      const b = new GraphBuilder();
      const x = b.input('x', 'float32', [3]);
      expect(b.scalar(2)).to.equal(b.scalar(2));
      expect(b.ints([1, 2])).to.equal(b.ints([1, 2]));
      expect(b.constant('float32', [2], [0.5, 1])).to.equal(b.constant('float32', [2], [0.5, 1]));
      const n = b.consts.length;
      const y1 = b.mul(x, 3);
      const y2 = b.add(x, 3);
      expect(b.consts.length).to.equal(n + 1);
      expect(y1.producer!.inputs[1]).to.equal(y2.producer!.inputs[1]);
      expect(y1.producer!.inputs[1]!.constData!.data[0]).to.equal(3);
    });

    it('literals differing in dtype, shape or value are distinct constants', () => {
      const b = new GraphBuilder();
      const s = b.scalar(2);
      expect(b.scalar(2, 'float64')).to.not.equal(s);
      expect(b.constant('float32', [1], [2])).to.not.equal(s);
      expect(b.scalar(2.5)).to.not.equal(s);
      expect(b.ints([1, 2])).to.not.equal(b.ints([2, 1]));
      expect(b.scalar(2, 'float64').dtype).to.equal('float64');
    });

    it('a literal takes the dtype of the value it meets', () => {
      const b = new GraphBuilder();
      const x = b.input('x', 'float64', [3]);
      expect(b.mul(x, 2).producer!.inputs[1]!.dtype).to.equal('float64');
      expect(b.sub(1, x).producer!.inputs[0]!.dtype).to.equal('float64');
    });
  });

  describe('determinism', () => {
    it('the same recipe built twice gives byte-identical encodeModel() bytes', () => {
      const m1 = encodeModel(recipe(5).toModel());
      const m2 = encodeModel(recipe(5).toModel());
      expect(Buffer.from(m1).equals(Buffer.from(m2))).to.equal(true);
      const p1 = encodeModel(recipe(5).toModel({ paramsAsInputs: true }));
      const p2 = encodeModel(recipe(5).toModel({ paramsAsInputs: true }));
      expect(Buffer.from(p1).equals(Buffer.from(p2))).to.equal(true);
    });

    it('a different seed gives different bytes (only in the initializers)', () => {
      const m1 = encodeModel(recipe(5).toModel());
      const m3 = encodeModel(recipe(6).toModel());
      expect(Buffer.from(m1).equals(Buffer.from(m3))).to.equal(false);
      // With parameters as inputs there are no seeded values left: the bytes agree.
      const p1 = encodeModel(recipe(5).toModel({ paramsAsInputs: true }));
      const p3 = encodeModel(recipe(6).toModel({ paramsAsInputs: true }));
      expect(Buffer.from(p1).equals(Buffer.from(p3))).to.equal(true);
    });

    it('attributes are written in sorted order whatever order they were given in', () => {
      const make = (attrs: Record<string, ReturnType<typeof aInt>>) => {
        const b = new GraphBuilder();
        const a = b.input('a', 'float32', [2, 3]);
        const c = b.input('c', 'float32', [2, 3]);
        b.output(b.op('Gemm', [a, c], attrs), 'y');
        return Buffer.from(encodeModel(b.toModel()));
      };
      const one = make({ transB: aInt(1), alpha: aFloat(0.5), beta: aFloat(2) });
      const two = make({ beta: aFloat(2), alpha: aFloat(0.5), transB: aInt(1) });
      expect(one.equals(two)).to.equal(true);
      const names = decodeModel(one).graph!.node![0].attribute!.map((a) => a.name);
      expect(names).to.deep.equal(['alpha', 'beta', 'transB']);
    });

    it('the recipe loads and runs on onnxruntime-node', async () => {
      const b = recipe(5);
      const x = b.inputs[0] as Value;
      const out = await runGraph(b, new Map([[x, { data: new Float32Array(12).fill(0.5), dims: [2, 6] }]]));
      expect(Number.isFinite(out.loss.data[0] as number)).to.equal(true);
      expect(Array.from(out['grad_blocks.0.fc.weight'].dims)).to.deep.equal([6, 4]);
    });
  });

  describe('opset and IR version', () => {
    it(`opset above ${MAX_OPSET} is refused`, () => {
      expect(MAX_OPSET).to.equal(21);
      expect(() => new GraphBuilder({ opset: 22 })).to.throw(GraphBuildError, /opset 22/);
      expect(() => new GraphBuilder({ opset: 21 })).not.to.throw();
    });

    it(`IR version above ${MAX_IR_VERSION} is refused`, () => {
      expect(MAX_IR_VERSION).to.equal(10);
      expect(() => new GraphBuilder({ irVersion: 11 })).to.throw(GraphBuildError, /IR version 11/);
      expect(() => new GraphBuilder({ irVersion: 10 })).not.to.throw();
    });

    it('opset and IR version are written into the model', () => {
      const m = decodeModel(encodeModel(new GraphBuilder({ opset: 18, irVersion: 9 }).toModel()));
      expect(Number(m.irVersion)).to.equal(9);
      expect(m.opsetImport.map((o) => [o.domain, Number(o.version)])).to.deep.equal([['', 18]]);
    });
  });
});
