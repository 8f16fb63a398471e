/** What compare and sweep share: resolving the experiment's config, seeds and data, and describing them. */
import * as path from 'node:path';
import { RunConfig, listPresets, loadPreset } from '../config';
import { ModelOverrides, applyModelOverrides } from '../cli/build-graph';
import { TrainCliOptions, applyTrainOverrides } from '../cli/train';
import { locateFashionMnist } from '../data/fashion-mnist';
import { UserError } from '../runtime/session';

/** Options common to compare and sweep (train options as `train`, cheap model overrides as `build-graph`). */
export interface ExperimentOptions extends TrainCliOptions, Omit<ModelOverrides, 'optimizer' | 'initSeed' | 'lj'> {
  preset?: string;
  seeds?: number[];
  out?: string;
  force?: boolean;
}

/** The preset with the model and train overrides applied (LJ settings as the preset or the options say). */
export function resolveBaseConfig(o: ExperimentOptions): RunConfig {
  if (!o.preset) throw new UserError('--preset NAME is required (ljtrain build-graph --list shows them)');
  const known = listPresets().map((p) => p.name);
  if (!known.includes(o.preset)) throw new UserError(`unknown preset '${o.preset}' (known: ${known.join(', ')})`);
  const { optimizer, ...model } = o;
  const cfg = applyModelOverrides(loadPreset(o.preset), model as ModelOverrides);
  const c = applyTrainOverrides(cfg, { ...o, optimizer });
  c.lj.enabled = true;
  return c;
}

/**
 * The seeds of the experiment: --seeds, else --seed, else the preset's seed. Seed s sets both the
 * data-order/augmentation seed (train.seed) and the parameter initialisation seed (initSeed).
 */
export function resolveSeeds(o: ExperimentOptions, cfg: RunConfig): number[] {
  if (o.seeds && o.seed !== undefined) throw new UserError('give either --seeds LIST or --seed S, not both');
  return o.seeds ?? [o.seed ?? cfg.train.seed];
}

/** The config of one arm: seed s for data order and initialisation, LJ on or off. */
export function armConfig(base: RunConfig, seed: number, lj: Partial<RunConfig['lj']> | false): RunConfig {
  const c: RunConfig = JSON.parse(JSON.stringify(base));
  c.initSeed = seed;
  c.train.seed = seed;
  if (lj === false) c.lj.enabled = false;
  else Object.assign(c.lj, lj, { enabled: true });
  return c;
}

/** The dataset folder the runs will read (resolved now, so it is part of the experiment's key). */
export function dataSource(cfg: RunConfig, dir?: string): string | null {
  if (cfg.dataset === 'fashion-mnist') return locateFashionMnist(dir);
  return dir ? path.resolve(dir) : null;
}

/** One line describing the training recipe. */
export function describeTrain(cfg: RunConfig): string {
  const t = cfg.train;
  const opt = t.optimizer === 'sgd' ? `SGD lr ${t.lr} momentum ${t.momentum}` : `AdamW lr ${t.lr} betas (${t.beta1}, ${t.beta2})`;
  const sched =
    t.schedule === 'cosine'
      ? `cosine to ${t.minLr}${t.warmupEpochs ? ` after ${t.warmupEpochs} warmup epochs` : ''}${t.period ? `, period ${t.period}` : ''}`
      : t.schedule === 'multistep'
        ? `×${t.gamma} at epochs ${t.milestones.join(', ')}`
        : 'constant lr';
  return `${opt}, weight decay ${t.weightDecay}, ${sched}, batch ${t.batch}, ${t.epochs} epoch${t.epochs === 1 ? '' : 's'}, flip ${t.flip ? 'on' : 'off'}`;
}

/** One line describing the model. */
export function describeModel(cfg: RunConfig): string {
  const m = cfg.model;
  if (m.type === 'mlp') return `MLP ${m.image.reduce((a, b) => a * b, 1)}-${m.hidden.join('-')}-${m.classes}`;
  return `ViT patch ${m.patch}, dim ${m.dim}, depth ${m.depth}, heads ${m.heads}, MLP ratio ${m.mlpRatio}, ${m.classes} classes`;
}

/** "σ=0.5, n=6, ε=0.1" (+ clamp and variant where not the paper's defaults). */
export function describeLj(lj: RunConfig['lj']): string {
  const extra = [lj.clampMax !== 5 ? `clamp ${lj.clampMax}` : '', lj.variant !== 'paper' ? lj.variant : '', lj.on ? `on ${lj.on}` : '', lj.particles !== 'auto' ? `${lj.particles} particles` : '']
    .filter(Boolean)
    .join(', ');
  return `σ=${lj.sigma}, n=${lj.n}, ε=${lj.epsilon}${extra ? `, ${extra}` : ''}`;
}
