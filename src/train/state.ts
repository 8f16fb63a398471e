/**
 * Training state (parameters, optimizer moments, step, epoch, RNG) and its checkpoint file.
 * Checkpoints are ODTC (ONNX Runtime's training checkpoint format), so a native run's checkpoint
 * loads in ORT's training runtimes and vice versa; run metadata (config, RNG, epoch) goes in the
 * property bag. Written atomically by the checkpoint writer.
 */
import type { RunConfig } from '../config';
import type { Param } from '../graph/builder';
import { Rng } from '../graph/rng';
import { Checkpoint, checkParamsMatch, readCheckpoint, writeCheckpoint } from '../artifacts/checkpoint';
import { OptimizerKind, stateName, stateSlots } from '../optim/optimizers';
import { UserError } from '../runtime/session';

export interface TensorSlot {
  shape: number[];
  data: Float32Array;
}

export interface OptSlot {
  param: string;
  slot: string;
  data: Float32Array;
}

export interface TrainState {
  /** All parameters by name (graph order). */
  params: Map<string, TensorSlot>;
  /** Optimizer state inputs by name (opt.<slot>.<param>). */
  opt: Map<string, OptSlot>;
  optimizer: OptimizerKind;
  /** Optimizer steps taken. */
  step: number;
  /** Epochs completed. */
  epoch: number;
  /** Data-order/augmentation RNG state at the start of the next epoch. */
  rng: number[];
  /** Train-step graph output name for each param/state input. */
  nextNames: Map<string, string>;
  /**
   * Frozen parameters (ORT training artifacts built with --freeze): stored as the checkpoint's
   * frozen_params, without optimizer state. Absent or empty: every parameter trains.
   */
  frozen?: Set<string>;
}

/** A fresh state from the builder's initial parameters, zero optimizer moments. */
export function initialState(params: { name: string; shape: number[]; data: Float32Array }[], kind: OptimizerKind, dataSeed: number, nextNames: Map<string, string>): TrainState {
  const state: TrainState = {
    params: new Map(),
    opt: new Map(),
    optimizer: kind,
    step: 0,
    epoch: 0,
    rng: new Rng(dataSeed).state(),
    nextNames,
  };
  for (const p of params) {
    state.params.set(p.name, { shape: p.shape, data: Float32Array.from(p.data) });
    for (const s of stateSlots(kind)) state.opt.set(stateName(s, p.name), { param: p.name, slot: s, data: new Float32Array(p.data.length) });
  }
  return state;
}

export function paramsFromBuilder(params: Param[]): { name: string; shape: number[]; data: Float32Array }[] {
  return params.map((p) => ({ name: p.value.name, shape: p.value.shape as number[], data: Float32Array.from(p.init) }));
}

/** Maps ODTC momentum names to our optimizer slots (ORT's AdamW uses momentum0 = m, momentum1 = v). */
const MOMENTUM_NAMES: Record<OptimizerKind, string[]> = { adamw: ['momentum0', 'momentum1'], sgd: ['momentum0'] };

export function stateToCheckpoint(state: TrainState, cfg: RunConfig | null): Checkpoint {
  const slots = stateSlots(state.optimizer);
  const props: Checkpoint['properties'] = {
    ints: { 'ljtrain.format': 1, 'ljtrain.epoch': state.epoch },
    floats: {},
    strings: { 'ljtrain.optimizer': state.optimizer, 'ljtrain.rng': JSON.stringify(state.rng) },
  };
  if (cfg) props.strings['ljtrain.config'] = JSON.stringify(cfg);
  const frozen = state.frozen ?? new Set<string>();
  const trainable = [...state.params].filter(([name]) => !frozen.has(name));
  return {
    requiresGradParams: trainable.map(([name, p]) => ({ name, dims: p.shape, data: p.data })),
    frozenParams: [...state.params].filter(([name]) => frozen.has(name)).map(([name, p]) => ({ name, dims: p.shape, data: p.data })),
    optimizer: {
      step: state.step,
      initialLearningRate: cfg?.train.lr ?? 0.001,
      states: trainable.map(([name, p]) => ({
        paramName: name,
        momentums: slots.map((s, k) => ({ name: MOMENTUM_NAMES[state.optimizer][k], dims: p.shape, data: state.opt.get(stateName(s, name))!.data })),
      })),
    },
    properties: props,
  };
}

/**
 * Rebuilds a TrainState from a checkpoint, checking names and shapes against the graph's parameters;
 * nothing is returned half-filled.
 */
export function stateFromCheckpoint(ck: Checkpoint, file: string, expected: { name: string; shape: number[] }[], nextNames: Map<string, string>): { state: TrainState; config: RunConfig | null } {
  checkParamsMatch(ck, expected, file);
  const kind = String(ck.properties.strings['ljtrain.optimizer'] ?? 'adamw') as OptimizerKind;
  if (kind !== 'adamw' && kind !== 'sgd') throw new UserError(`${file}: unknown optimizer '${kind}' in the checkpoint`);
  const slots = stateSlots(kind);
  const byName = new Map(ck.requiresGradParams.concat(ck.frozenParams).map((t) => [t.name, t]));
  const state: TrainState = {
    params: new Map(),
    opt: new Map(),
    optimizer: kind,
    step: ck.optimizer?.step ?? 0,
    epoch: Number(ck.properties.ints['ljtrain.epoch'] ?? 0),
    rng: ck.properties.strings['ljtrain.rng'] ? JSON.parse(ck.properties.strings['ljtrain.rng']) : [1, 2, 3, 4],
    nextNames,
  };
  if (ck.frozenParams.length) state.frozen = new Set(ck.frozenParams.map((t) => t.name));
  const optByParam = new Map((ck.optimizer?.states ?? []).map((s) => [s.paramName, s]));
  for (const e of expected) {
    const t = byName.get(e.name)!;
    state.params.set(e.name, { shape: e.shape, data: Float32Array.from(t.data) });
    const os = optByParam.get(e.name);
    slots.forEach((s, k) => {
      const mName = MOMENTUM_NAMES[kind][k];
      const m = os?.momentums.find((x) => x.name === mName);
      if (os && !m) throw new UserError(`${file}: optimizer state of ${e.name} lacks ${mName}`);
      if (m && m.data.length !== t.data.length) throw new UserError(`${file}: ${mName} of ${e.name} has ${m.data.length} values, expected ${t.data.length}`);
      state.opt.set(stateName(s, e.name), { param: e.name, slot: s, data: m ? Float32Array.from(m.data) : new Float32Array(t.data.length) });
    });
  }
  const config = ck.properties.strings['ljtrain.config'] ? (JSON.parse(ck.properties.strings['ljtrain.config']) as RunConfig) : null;
  return { state, config };
}

export function saveTrainState(file: string, state: TrainState, cfg: RunConfig | null): void {
  writeCheckpoint(file, stateToCheckpoint(state, cfg));
}

export function loadTrainState(file: string, expected: { name: string; shape: number[] }[], nextNames: Map<string, string>): { state: TrainState; config: RunConfig | null } {
  return stateFromCheckpoint(readCheckpoint(file), file, expected, nextNames);
}
