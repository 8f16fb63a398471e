/**
 * Backbones with named feature outputs. Each model maps `input` (b, c, h, w) to logits (b, classes)
 * and exposes features by name, e.g. the ViT's `tokens` (b, l, d) and `cls` (b, d).
 */
import type { GraphBuilder } from '../graph/builder';
import { GraphBuildError, Value } from '../graph/types';
import { layerNorm, linear, mlpBlock, selfAttention, truncNormal } from '../nn/layers';

export interface MlpConfig {
  type: 'mlp';
  /** Input image (c, h, w). */
  image: [number, number, number];
  classes: number;
  hidden: number[];
}

export interface VitConfig {
  type: 'vit';
  image: [number, number, number];
  classes: number;
  patch: number;
  dim: number;
  depth: number;
  heads: number;
  mlpRatio: number;
}

export type ModelConfig = MlpConfig | VitConfig;

export interface ModelOutputs {
  logits: Value;
  /** Named feature outputs; the LJ loss attaches to one of them. */
  features: Record<string, Value>;
  /** The default LJ attach point and its particle kind. */
  defaultFeature: string;
}

/** MLP: flatten, then Linear+ReLU per hidden size; feature `hidden` = last hidden layer (b, d). */
export function mlp(b: GraphBuilder, x: Value, c: MlpConfig): ModelOutputs {
  const [ch, h, w] = c.image;
  let y = b.reshape(x, [-1, ch * h * w]);
  c.hidden.forEach((n, i) => {
    y = b.scope(`fc${i + 1}`, () => b.relu(linear(b, y, n)));
  });
  const features = y;
  const logits = b.scope('head', () => linear(b, features, c.classes));
  return { logits, features: { hidden: features }, defaultFeature: 'hidden' };
}

/**
 * ViT: patches by reshape/transpose + Linear, class token, learned position embedding, pre-norm
 * blocks (attention, GELU MLP), final LayerNorm; head on the class token.
 * Features: `tokens` (b, l, d) after the final LayerNorm, `cls` (b, d).
 */
export function vit(b: GraphBuilder, x: Value, c: VitConfig): ModelOutputs {
  const [ch, h, w] = c.image;
  const p = c.patch;
  if (h % p !== 0 || w % p !== 0) throw new GraphBuildError(`vit: image ${h}x${w} is not divisible by patch ${p}`);
  if (c.dim % c.heads !== 0) throw new GraphBuildError(`vit: dim ${c.dim} is not divisible by heads ${c.heads}`);
  const gh = h / p, gw = w / p, n = gh * gw, L = n + 1, D = c.dim;
  const patches = b.reshape(b.transpose(b.reshape(x, [-1, ch, gh, p, gw, p]), [0, 2, 4, 1, 3, 5]), [-1, n, ch * p * p]);
  const emb = b.scope('patch_embed', () => linear(b, patches, D, { init: 'vit' }));
  const cls = b.param('cls_token', [1, 1, D], truncNormal(0.02));
  const pos = b.param('pos_embed', [1, L, D], truncNormal(0.02));
  // Class token broadcast to the run-time batch: (b, 1, D) from Shape(emb)[0].
  const bShape = b.concat([b.slice(b.shapeOf(emb), [0], [1], [0]), b.ints([1, D])], 0);
  const clsB = b.expand(cls, bShape, [emb.shape[0], 1, D]);
  let t = b.add(b.concat([clsB, emb], 1), pos);
  for (let i = 0; i < c.depth; i++) {
    t = b.scope('blocks', () =>
      b.scope(i, () => {
        const a = b.add(t, b.scope('attn', () => selfAttention(b, b.scope('norm1', () => layerNorm(b, t)), c.heads)));
        return b.add(a, b.scope('mlp', () => mlpBlock(b, b.scope('norm2', () => layerNorm(b, a)), D * c.mlpRatio)));
      }),
    );
  }
  const tokens = b.scope('norm', () => layerNorm(b, t));
  const clsFeat = b.gather(tokens, b.constant('int64', [], [0]), 1);
  const logits = b.scope('head', () => linear(b, clsFeat, c.classes, { init: 'vit' }));
  return { logits, features: { tokens, cls: clsFeat }, defaultFeature: 'tokens' };
}

export function buildModel(b: GraphBuilder, x: Value, c: ModelConfig): ModelOutputs {
  switch (c.type) {
    case 'mlp': return mlp(b, x, c);
    case 'vit': return vit(b, x, c);
    default: throw new GraphBuildError(`unknown model type '${(c as { type: string }).type}' (known: mlp, vit)`);
  }
}
