/** Helpers of the ORT training tests: tiny configs, both backends from the same initial parameters. */
import { expect } from 'chai';
import type { RunConfig } from '../../src/config';
import { loadPreset } from '../../src/config';
import { applyModelOverrides } from '../../src/cli/build-graph';
import { buildEval, buildNativeTrainStep, nextName } from '../../src/artifacts/graphs';
import { buildOrtFromConfig, lrSchedule, ortOptimizerModel } from '../../src/artifacts/ort-build';
import { encodeModel } from '../../src/onnx/proto';
import { stateName, stateSlots } from '../../src/optim/optimizers';
import { OrtTrainBackend } from '../../src/train/ort-backend';
import { initialState, paramsFromBuilder } from '../../src/train/state';
import { NativeBackend } from '../../src/train/trainer';

export const TINY_MLP = { hidden: [32, 16] };
export const TINY_VIT = { dim: 16, depth: 1, heads: 2, patch: 7 };

export function tinyConfig(preset: 'mlp-fmnist' | 'vit-tiny-fmnist', train: Partial<RunConfig['train']> = {}): RunConfig {
  const cfg = applyModelOverrides(loadPreset(preset), preset === 'mlp-fmnist' ? TINY_MLP : TINY_VIT);
  Object.assign(cfg.train, train);
  return cfg;
}

/** Both backends on fresh states with the same initial parameters. */
export async function twoBackends(cfg: RunConfig, stepsPerEpoch: number) {
  const kind = cfg.train.optimizer;
  const ts = buildNativeTrainStep(cfg, kind);
  const next = new Map<string, string>();
  for (const p of ts.params) {
    next.set(p.value.name, nextName(p.value.name));
    for (const s of stateSlots(kind)) next.set(stateName(s, p.value.name), nextName(stateName(s, p.value.name)));
  }
  const native = initialState(paramsFromBuilder(ts.params), kind, cfg.train.seed, next);
  const ort = buildOrtFromConfig(cfg);
  const ortState = initialState([...ort.state.params].map(([name, p]) => ({ name, shape: p.shape, data: p.data })), kind, cfg.train.seed, new Map());
  const nb = await NativeBackend.create(cfg, native, encodeModel(ts.model), encodeModel(buildEval(cfg)), { threads: 1 });
  const lrs = lrSchedule(cfg.train, stepsPerEpoch);
  const ob = await OrtTrainBackend.create(cfg, ortState, {
    trainingModel: encodeModel(ort.trainingModel),
    evalModel: encodeModel(ort.evalModel),
    optimizerModel: encodeModel(ortOptimizerModel(cfg.train, lrs)),
    lrs,
  });
  return { nb, ob, native, ortState };
}

export function maxAbsDiff(a: Map<string, { data: Float32Array }>, b: Map<string, { data: Float32Array }>, filter: (k: string) => boolean = () => true): number {
  let d = 0;
  for (const [k, v] of a) {
    if (!filter(k)) continue;
    const w = b.get(k)!.data;
    expect(w.length, k).to.equal(v.data.length);
    for (let i = 0; i < w.length; i++) d = Math.max(d, Math.abs(v.data[i] - w[i]));
  }
  return d;
}

