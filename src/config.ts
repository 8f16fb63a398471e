/**
 * Run configuration: a preset (JSON recipe under presets/) with command-line overrides applied,
 * validated once so every later stage can trust it.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import type { ModelConfig } from './models';
import type { LJVariant } from './losses/lj';
import { validateLJOptions } from './losses/lj';
import type { OptimizerConfig } from './optim/optimizers';
import type { ScheduleConfig } from './optim/schedule';
import { UserError } from './runtime/session';
import { projectRoot } from './util/project-root';

export interface LJConfig {
  enabled: boolean;
  /** Named feature output the loss attaches to; '' = the model's default. */
  on: string;
  /** 'tokens': rows of (b, l, d) features interact within a sample; 'batch': the samples of (b, d) features. */
  particles: 'tokens' | 'batch' | 'auto';
  sigma: number;
  n: number;
  epsilon: number;
  clampMax: number;
  variant: LJVariant;
}

export interface TrainConfig extends OptimizerConfig, ScheduleConfig {
  epochs: number;
  batch: number;
  flip: boolean;
  /** Seed for data order and augmentation. */
  seed: number;
}

export interface RunConfig {
  preset: string;
  description?: string;
  dataset: 'fashion-mnist' | 'cifar-100' | 'tiny-imagenet' | 'synthetic';
  model: ModelConfig;
  /** Seed of the parameter initialisers. */
  initSeed: number;
  lj: LJConfig;
  train: TrainConfig;
}

export { projectRoot };

export function presetsDir(): string {
  return path.join(projectRoot(), 'presets');
}

export function listPresets(): { name: string; description: string }[] {
  return fs
    .readdirSync(presetsDir())
    .filter((f) => f.endsWith('.json'))
    .sort()
    .map((f) => {
      const j = JSON.parse(fs.readFileSync(path.join(presetsDir(), f), 'utf8'));
      return { name: f.replace(/\.json$/, ''), description: j.description ?? '' };
    });
}

export function loadPreset(name: string): RunConfig {
  const file = path.join(presetsDir(), `${name}.json`);
  if (!/^[a-z0-9][a-z0-9._-]*$/i.test(name) || !fs.existsSync(file)) {
    const known = listPresets().map((p) => p.name).join(', ');
    throw new UserError(`unknown preset '${name}' (known: ${known}, lj-loss)`);
  }
  const raw = JSON.parse(fs.readFileSync(file, 'utf8'));
  return { ...raw, preset: name } as RunConfig;
}

function pos(name: string, v: number, integer = false): void {
  if (!Number.isFinite(v) || v <= 0 || (integer && !Number.isInteger(v))) throw new UserError(`invalid ${name}=${v}: must be a positive ${integer ? 'integer' : 'number'}`);
}
function nonneg(name: string, v: number): void {
  if (!Number.isFinite(v) || v < 0) throw new UserError(`invalid ${name}=${v}: must be a number >= 0`);
}

/** Validates a resolved config, naming the option at fault. */
export function validateConfig(c: RunConfig): RunConfig {
  const m = c.model;
  if (!m || (m.type !== 'mlp' && m.type !== 'vit')) throw new UserError(`invalid model type '${(m as { type?: string })?.type}' (known: mlp, vit)`);
  m.image.forEach((d, i) => pos(`image[${i}]`, d, true));
  pos('classes', m.classes, true);
  if (m.type === 'mlp') m.hidden.forEach((h, i) => pos(`hidden[${i}]`, h, true));
  else {
    for (const k of ['patch', 'dim', 'depth', 'heads', 'mlpRatio'] as const) pos(k === 'mlpRatio' ? 'mlp-ratio' : k, m[k], true);
    if (m.image[1] % m.patch || m.image[2] % m.patch) throw new UserError(`invalid patch=${m.patch}: image ${m.image[1]}x${m.image[2]} is not divisible by it`);
    if (m.dim % m.heads) throw new UserError(`invalid heads=${m.heads}: dim ${m.dim} is not divisible by it`);
  }
  try {
    validateLJOptions(c.lj);
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  if (!['tokens', 'batch', 'auto'].includes(c.lj.particles)) throw new UserError(`invalid lj-particles '${c.lj.particles}' (use tokens or batch)`);
  const t = c.train;
  pos('epochs', t.epochs, true);
  pos('batch', t.batch, true);
  pos('lr', t.lr);
  nonneg('weight-decay', t.weightDecay);
  nonneg('min-lr', t.minLr);
  nonneg('warmup-epochs', t.warmupEpochs);
  nonneg('momentum', t.momentum);
  if (!['adamw', 'sgd'].includes(t.optimizer)) throw new UserError(`invalid optimizer '${t.optimizer}' (use adamw or sgd)`);
  if (!['cosine', 'multistep', 'constant'].includes(t.schedule)) throw new UserError(`invalid schedule '${t.schedule}' (use cosine, multistep or constant)`);
  t.milestones.forEach((x) => pos('milestones', x, true));
  if (!Number.isInteger(t.seed)) throw new UserError(`invalid seed=${t.seed}: must be an integer`);
  return c;
}
