/** Gradient rules for elementwise ops: arithmetic, unary math, activations, Clip, Where, Max/Min. */
import { registerGrad } from '../registry';
import type { Value } from '../../graph/types';

// Binary arithmetic: broadcasting undone by the shared unbroadcast.
registerGrad('Add', (c, [dy]) => [c.unbroadcast(dy!, c.x(0)), c.unbroadcast(dy!, c.x(1))]);
registerGrad('Sub', (c, [dy]) => [c.unbroadcast(dy!, c.x(0)), c.unbroadcast(c.b.neg(dy!), c.x(1))]);
// x·x: one 2·x·dy instead of two products and their fan-in sum (LJ's powers are chains of squares).
registerGrad('Mul', (c, [dy]) => c.x(0) === c.x(1) ? [c.b.mul(c.b.mul(dy!, c.x(0)), 2), null] : [
  c.unbroadcast(c.b.mul(dy!, c.x(1)), c.x(0)),
  c.unbroadcast(c.b.mul(dy!, c.x(0)), c.x(1)),
]);
// d(a/b) = dy/b, -dy*y/b
registerGrad('Div', (c, [dy]) => {
  const { b } = c;
  const da = b.div(dy!, c.x(1));
  return [c.unbroadcast(da, c.x(0)), c.unbroadcast(b.neg(b.mul(da, c.y(0))), c.x(1))];
});
registerGrad('Sum', (c, [dy]) => c.node.inputs.map((v) => (v ? c.unbroadcast(dy!, v) : null)));
registerGrad('Neg', (c, [dy]) => [c.b.neg(dy!)]);
registerGrad('Identity', (_c, [dy]) => [dy]);

// d(a^p)/da = p*a^(p-1); d(a^p)/dp = y*ln(a). Constant exponents get no gradient (not on the path).
registerGrad('Pow', (c, [dy]) => {
  const { b } = c;
  const a = c.x(0), p = c.x(1);
  let da: Value;
  const pc = p.constData;
  if (pc && pc.data.length === 1 && Number(pc.data[0]) === 2) da = b.mul(dy!, b.mul(a, 2));
  else da = b.mul(dy!, b.mul(p, b.pow(a, b.sub(p, 1))));
  const dp = b.mul(dy!, b.mul(c.y(0), b.log(a)));
  return [c.unbroadcast(da, a), c.unbroadcast(dp, p)];
});
registerGrad('Sqrt', (c, [dy]) => [c.b.div(c.b.mul(dy!, 0.5), c.y(0))]);
registerGrad('Reciprocal', (c, [dy]) => [c.b.neg(c.b.mul(dy!, c.b.mul(c.y(0), c.y(0))))]);
registerGrad('Exp', (c, [dy]) => [c.b.mul(dy!, c.y(0))]);
registerGrad('Log', (c, [dy]) => [c.b.div(dy!, c.x(0))]);
registerGrad('Abs', (c, [dy]) => [c.b.mul(dy!, c.b.op('Sign', [c.x(0)]))]);
// Relu'(0) = 0, as torch.
registerGrad('Relu', (c, [dy]) => [c.b.where(c.b.greater(c.x(0), 0), dy!, 0)]);
// erf'(x) = 2/sqrt(pi) * exp(-x^2)
registerGrad('Erf', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0);
  return [b.mul(dy!, b.mul(b.exp(b.neg(b.mul(x, x))), 2 / Math.sqrt(Math.PI)))];
});
registerGrad('Tanh', (c, [dy]) => [c.b.mul(dy!, c.b.sub(1, c.b.mul(c.y(0), c.y(0))))]);
registerGrad('Sigmoid', (c, [dy]) => [c.b.mul(dy!, c.b.mul(c.y(0), c.b.sub(1, c.y(0))))]);

// Clip passes the gradient where min <= x <= max (inclusive, as torch.clamp); bounds get none.
registerGrad('Clip', (c, [dy]) => {
  const { b } = c;
  const x = c.x(0);
  const lo = c.node.inputs[1] ?? null;
  const hi = c.node.inputs[2] ?? null;
  let keep: Value | null = null;
  if (lo) keep = b.op('GreaterOrEqual', [x, lo]);
  if (hi) {
    const k2 = b.op('LessOrEqual', [x, hi]);
    keep = keep ? b.op('And', [keep, k2]) : k2;
  }
  return [keep ? b.where(keep, dy!, 0) : dy, null, null];
});

registerGrad('Where', (c, [dy]) => {
  const { b } = c;
  const cond = c.x(0);
  return [null, c.unbroadcast(b.where(cond, dy!, 0), c.x(1)), c.unbroadcast(b.where(cond, 0, dy!), c.x(2))];
});

// Max/Min of two inputs: the gradient goes to the winner; ties split evenly (as torch.maximum).
function extremum(cmp: 'Greater' | 'Less') {
  return (c: Parameters<Parameters<typeof registerGrad>[1]>[0], dys: (Value | null)[]) => {
    const { b } = c;
    if (c.node.inputs.length !== 2) throw new Error(`${c.node.opType} gradient supports 2 inputs (node ${c.node.name})`);
    const a = c.x(0), q = c.x(1), dy = dys[0]!;
    const wins = b.cast(b.op(cmp, [a, q]), dy.dtype);
    const ties = b.mul(b.cast(b.equal(a, q), dy.dtype), 0.5);
    const wa = b.add(wins, ties);
    const da = b.mul(dy, wa);
    const dq = b.sub(dy, da);
    return [c.unbroadcast(da, a), c.unbroadcast(dq, q)];
  };
}
registerGrad('Max', extremum('Greater'));
registerGrad('Min', extremum('Less'));

// Cast between float types is differentiable; from/to integers the flow stops at the integer side.
registerGrad('Cast', (c, [dy]) => {
  const x = c.x(0);
  if (x.dtype !== 'float32' && x.dtype !== 'float64') return [null];
  return [x.dtype === dy!.dtype ? dy : c.b.cast(dy!, x.dtype)];
});
