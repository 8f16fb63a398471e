/** `ljtrain build-graph`: writes a preset's graphs, initial checkpoint and manifest. */
import { Command } from 'commander';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunConfig, listPresets, loadPreset, validateConfig } from '../config';
import { GraphBuilder } from '../graph/builder';
import { backward } from '../grad/backward';
import { ljLoss, validateLJOptions, LJVariant } from '../losses/lj';
import { encodeModel } from '../onnx/proto';
import { buildEval, buildNativeTrainStep } from '../artifacts/graphs';
import { ARTIFACT_FILES, writeOrtArtifacts } from '../artifacts/ort-artifacts';
import { buildOrtFromConfig, resolveFrozen } from '../artifacts/ort-build';
import { initialState, paramsFromBuilder, saveTrainState } from '../train/state';
import { writeManifest } from '../artifacts/manifest';
import { UserError } from '../runtime/session';
import { choice, intList, num, posInt } from './options';
import { writeFileAtomic } from '../util/atomic-write';

export interface ModelOverrides {
  sigma?: number; n?: number; epsilon?: number; clampMax?: number; ljVariant?: LJVariant; variant?: LJVariant;
  lj?: boolean; ljOn?: string; ljParticles?: 'tokens' | 'batch';
  patch?: number; dim?: number; depth?: number; heads?: number; mlpRatio?: number; hidden?: number[]; classes?: number; initSeed?: number;
  optimizer?: 'adamw' | 'sgd';
}

/** Applies command-line overrides to a preset's model and LJ settings. */
export function applyModelOverrides(cfg: RunConfig, o: ModelOverrides): RunConfig {
  const c: RunConfig = JSON.parse(JSON.stringify(cfg));
  if (o.lj === false) c.lj.enabled = false;
  for (const k of ['sigma', 'n', 'epsilon', 'clampMax'] as const) if (o[k] !== undefined) c.lj[k] = o[k]!;
  const variant = o.ljVariant ?? o.variant;
  if (variant) c.lj.variant = variant;
  if (o.ljOn) c.lj.on = o.ljOn;
  if (o.ljParticles) c.lj.particles = o.ljParticles;
  const m = c.model as unknown as Record<string, unknown>;
  for (const k of ['patch', 'dim', 'depth', 'heads', 'mlpRatio'] as const) {
    if (o[k] === undefined) continue;
    if (c.model.type !== 'vit') throw new UserError(`--${k === 'mlpRatio' ? 'mlp-ratio' : k} applies to ViT presets only`);
    m[k] = o[k];
  }
  if (o.hidden) {
    if (c.model.type !== 'mlp') throw new UserError('--hidden applies to MLP presets only');
    m.hidden = o.hidden;
  }
  if (o.classes !== undefined) c.model.classes = o.classes;
  if (o.initSeed !== undefined) c.initSeed = o.initSeed;
  if (o.optimizer) c.train.optimizer = o.optimizer;
  return validateConfig(c);
}

/** Writes the standalone LJ loss graph: features [B,L,D] -> loss, features_grad. */
export function buildLjLossGraph(shape: number[], o: ModelOverrides): GraphBuilder {
  const variant = o.ljVariant ?? o.variant ?? 'paper';
  let opts;
  try {
    opts = validateLJOptions({ sigma: o.sigma, n: o.n, epsilon: o.epsilon, clampMax: o.clampMax, variant });
  } catch (e) {
    throw new UserError((e as Error).message);
  }
  const b = new GraphBuilder();
  const f = b.input('features', 'float32', shape);
  const loss = ljLoss(b, f, opts, 'tokens');
  const [g] = backward(b, loss, [f]);
  b.output(loss, 'loss');
  b.output(g!, 'features_grad');
  return b;
}

const writeFile = (file: string, bytes: Uint8Array): void => writeFileAtomic(file, bytes, 'ONNX model');

/** Builds and writes the native artifacts of a config into `out`. */
export function writeNativeArtifacts(cfg: RunConfig, out: string): { files: string[] } {
  return writeArtifacts(cfg, out, { format: 'native' });
}

export type ArtifactFormat = 'native' | 'ort' | 'both';

/**
 * Writes a config's artifacts into `out`: native (train_step.onnx, eval.onnx, initial.ckpt), ORT
 * training (training_model.onnx, eval_model.onnx, optimizer_model.onnx, checkpoint; see
 * src/artifacts/ort-build.ts), or both, and one manifest listing every file with its sha256.
 * `freeze`: --freeze patterns (ORT only: the native train step trains every parameter).
 */
export function writeArtifacts(cfg: RunConfig, out: string, o: { format?: ArtifactFormat; freeze?: string[] } = {}): { files: string[] } {
  const format = o.format ?? 'native';
  const freeze = o.freeze ?? [];
  if (freeze.length && format !== 'ort') {
    throw new UserError(`--freeze applies to the ORT training artifacts only (the native train step trains every parameter): use --format ort`);
  }
  const frozen = resolveFrozen(cfg, freeze);
  fs.mkdirSync(out, { recursive: true });
  const files: string[] = [];
  let ts: Parameters<typeof writeManifest>[2] | null = null;
  if (format === 'native' || format === 'both') {
    const nts = buildNativeTrainStep(cfg, cfg.train.optimizer);
    writeFile(path.join(out, 'train_step.onnx'), encodeModel(nts.model));
    writeFile(path.join(out, 'eval.onnx'), encodeModel(buildEval(cfg)));
    const state = initialState(paramsFromBuilder(nts.params), cfg.train.optimizer, cfg.train.seed, new Map());
    saveTrainState(path.join(out, 'initial.ckpt'), state, cfg);
    files.push('train_step.onnx', 'eval.onnx', 'initial.ckpt');
    ts = nts;
  }
  if (format === 'ort' || format === 'both') {
    const art = buildOrtFromConfig(cfg, { frozen });
    writeOrtArtifacts(out, art);
    files.push(...Object.values(ARTIFACT_FILES));
    // --format ort: the manifest's trainStep entry describes training_model.onnx.
    ts ??= { model: art.trainingModel, params: art.builderParams, next: {}, stateNames: [] };
  } else {
    // A native-only folder must not keep stale ORT files from an earlier build.
    for (const f of Object.values(ARTIFACT_FILES)) fs.rmSync(path.join(out, f), { force: true });
  }
  if (format === 'ort') for (const f of ['train_step.onnx', 'eval.onnx', 'initial.ckpt']) fs.rmSync(path.join(out, f), { force: true });
  writeManifest(out, cfg, ts!, files);
  return { files };
}


/** Model and LJ options shared by build-graph, compare and sweep (applied by applyModelOverrides). */
export function addModelOptions(c: Command): Command {
  return c
    .option('--clamp-max <c>', 'upper clamp of the potential', num('clamp-max'))
    .option('--variant <v>', 'LJ form: paper or adaptive (eq. 8)', choice('variant', ['paper', 'adaptive'] as const))
    .option('--lj-on <feature>', 'feature output the LJ loss attaches to (vit: tokens, cls; mlp: hidden)')
    .option('--lj-particles <p>', 'tokens: rows of (b,l,d) features; batch: samples of (b,d) features', choice('lj-particles', ['tokens', 'batch'] as const))
    .option('--patch <p>', 'ViT patch size', posInt('patch'))
    .option('--dim <d>', 'ViT width', posInt('dim'))
    .option('--depth <k>', 'ViT blocks', posInt('depth'))
    .option('--heads <h>', 'ViT attention heads', posInt('heads'))
    .option('--mlp-ratio <r>', 'ViT MLP ratio', posInt('mlp-ratio'))
    .option('--hidden <sizes>', 'MLP hidden sizes, e.g. 256,128', intList('hidden'));
}

export function buildGraphCommand(): Command {
  return addModelOptions(
    new Command('build-graph')
      .description('build the train-step, eval graphs and initial checkpoint of a preset (--format ort: ONNX Runtime training artifacts), or the standalone lj-loss graph')
      .option('--preset <name>', 'preset name (see --list), or lj-loss')
      .option('--list', 'list the presets')
      .option('--out <dir>', 'output folder (default graphs/<preset>)'),
  )
    .option('--features-shape <B,L,D>', 'lj-loss preset: static features shape', intList('features-shape'))
    .option('--sigma <s>', 'LJ sigma (equilibrium cosine distance)', num('sigma'))
    .option('--n <n>', 'LJ exponent n (potential is 2n-n)', num('n'))
    .option('--epsilon <e>', 'LJ weight epsilon', num('epsilon'))
    .option('--lj-variant <v>', 'same as --variant', choice('lj-variant', ['paper', 'adaptive'] as const))
    .option('--no-lj', 'build the baseline without the LJ loss')
    .option('--classes <k>', 'number of classes', posInt('classes'))
    .option('--init-seed <s>', 'seed of the parameter initialisers', posInt('init-seed'))
    .option('--optimizer <o>', 'optimizer built into the train step: adamw or sgd', choice('optimizer', ['adamw', 'sgd'] as const))
    .option('--format <f>', 'native (train_step.onnx for onnxruntime-node), ort (ONNX Runtime training artifacts: training_model.onnx, eval_model.onnx, optimizer_model.onnx, checkpoint) or both', choice('format', ['native', 'ort', 'both'] as const), 'native')
    .option('--freeze <pattern>', "ORT artifacts: parameters that do not train, by glob ('patch_embed.*') or /regex/; repeat or comma-separate", (v: string, prev: string[] = []) => prev.concat(v))
    .action((o: ModelOverrides & { preset?: string; list?: boolean; out?: string; featuresShape?: number[]; format?: ArtifactFormat; freeze?: string[] }) => {
      if (o.list) {
        for (const p of listPresets()) console.log(`${p.name.padEnd(22)} ${p.description}`);
        console.log(`${'lj-loss'.padEnd(22)} the standalone LJ loss graph: features [B,L,D] -> loss, features_grad`);
        return;
      }
      if (!o.preset) throw new UserError('build-graph needs --preset NAME (or --list)');
      if (o.preset === 'lj-loss') {
        const shape = o.featuresShape;
        if (!shape) throw new UserError('--preset lj-loss needs --features-shape B,L,D');
        if (shape.length !== 3) throw new UserError(`--features-shape must have 3 dimensions B,L,D, got ${shape.join(',')}`);
        if (shape.some((d) => d <= 0)) throw new UserError(`--features-shape dimensions must be positive, got ${shape.join(',')}`);
        const out = o.out ?? path.join('graphs', 'lj-loss');
        fs.mkdirSync(out, { recursive: true });
        const b = buildLjLossGraph(shape, o);
        writeFile(path.join(out, 'lj_loss.onnx'), encodeModel(b.toModel({ name: 'lj_loss' })));
        console.log(`wrote ${path.join(out, 'lj_loss.onnx')}`);
        return;
      }
      const cfg = applyModelOverrides(loadPreset(o.preset), o);
      const out = o.out ?? path.join('graphs', o.preset);
      const { files } = writeArtifacts(cfg, out, { format: o.format, freeze: o.freeze });
      console.log(`wrote ${files.concat('manifest.json').map((f) => path.join(out, f)).join(', ')}`);
    });
}
