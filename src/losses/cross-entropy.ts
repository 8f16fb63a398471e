/**
 * Softmax cross-entropy with integer labels, built from LogSoftmax and OneHot (both with rules):
 *   loss = −mean_i Σ_k onehot(y_i)_k · log_softmax(z_i)_k
 * Also returns the count of correct argmax predictions (no gradient).
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError, Value, shapeStr } from '../graph/types';
import { aInt } from '../graph/types';

export function crossEntropy(b: GraphBuilder, logits: Value, labels: Value): { loss: Value; correct: Value } {
  if (logits.rank !== 2) throw new GraphBuildError(`cross-entropy: logits must be (b, classes), got ${shapeStr(logits.shape)}`);
  const K = logits.shape[1];
  if (typeof K !== 'number') throw new GraphBuildError('cross-entropy: the class count must be static');
  return b.scope('ce', () => {
    const logp = b.logSoftmax(logits, -1);
    const nll = b.neg(b.reduceSum(b.mul(b.oneHot(labels, K, logits.dtype), logp), [-1], false));
    const loss = b.reduceMean(nll, null, false);
    const pred = b.op('ArgMax', [logits], { axis: aInt(1), keepdims: aInt(0) });
    const correct = b.reduceSum(b.cast(b.equal(pred, labels), 'float32'), null, false);
    return { loss, correct };
  });
}
