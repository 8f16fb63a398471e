/**
 * Every preset builds (native train step, and the eval graph where cheap) and shape-checks: graph
 * I/O names, dtypes and shapes, parameter counts from the architecture, named feature outputs, and
 * gradient coverage of every forward/loss op the train steps emit. The paper's ViT presets
 * (S/8, S/16, B/8, B/16 for TinyImageNet and CIFAR-100) are built but never run.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { RunConfig, listPresets, loadPreset, validateConfig } from '../../src/config';
import { BATCH_DIM, buildEval, buildForward, buildInference, buildNativeTrainStep, ljAttach, nextName } from '../../src/artifacts/graphs';
import { GRAD_RULES, NON_DIFFERENTIABLE } from '../../src/grad/registry';
import '../../src/grad/rules';
import { uncoveredOps } from '../../src/grad/coverage';
import { GraphBuilder } from '../../src/graph/builder';
import { crossEntropy } from '../../src/losses/cross-entropy';
import { ljLoss } from '../../src/losses/lj';
import { encodeModel, onnx } from '../../src/onnx/proto';
import { HYPER_INPUTS, stateName, stateSlots } from '../../src/optim/optimizers';
import { createSession, tensor } from '../../src/runtime/session';
import type { VitConfig } from '../../src/models';
import { SKIP_CHECKER_MSG, onnxCheck, pythonOnnxAvailable, vinfo } from '../cli/helpers';
import { removeDir, tempDir } from '../helpers/tiny-data';

const FLOAT = onnx.TensorProto.DataType.FLOAT;
const INT64 = onnx.TensorProto.DataType.INT64;

/** The presets the paper's experiments need; each must exist. */
const PAPER_PRESETS = [
  'vit-s8-tinyimagenet', 'vit-s16-tinyimagenet', 'vit-b8-tinyimagenet', 'vit-b16-tinyimagenet',
  'vit-s8-cifar100', 'vit-s16-cifar100', 'vit-b8-cifar100', 'vit-b16-cifar100',
];
/** Presets whose eval graph is also built here (the B models' initialisers take seconds each). */
const isBig = (name: string) => /^vit-b/.test(name);

/** Parameter count of a ViT config, from the architecture (independent of the builder). */
function vitParamCount(m: VitConfig): number {
  const [C, H, W] = m.image;
  const D = m.dim, P = m.patch, R = m.mlpRatio * m.dim;
  const L = (H / P) * (W / P) + 1;
  const patchEmbed = C * P * P * D + D;
  const cls = D;
  const pos = L * D;
  const block = 2 * (2 * D) + (D * 3 * D + 3 * D) + (D * D + D) + (D * R + R) + (R * D + D);
  const finalLn = 2 * D;
  const head = D * m.classes + m.classes;
  return patchEmbed + cls + pos + m.depth * block + finalLn + head;
}

interface Built {
  cfg: RunConfig;
  trainStep: onnx.ModelProto;
  params: { name: string; shape: number[]; count: number }[];
  evalModel: onnx.ModelProto | null;
  seconds: number;
}

const dimsOf = (io: onnx.IValueInfoProto[] | null | undefined) => new Map((io ?? []).map((v) => [v.name!, vinfo(v)]));

describe('models: presets build and shape-check', function () {
  this.timeout(300000);
  const built = new Map<string, Built>();
  let dir: string;

  before(function () {
    dir = tempDir('ljtrain-presets-');
    for (const p of listPresets()) {
      const t0 = performance.now();
      const cfg = validateConfig(loadPreset(p.name));
      const ts = buildNativeTrainStep(cfg, cfg.train.optimizer);
      const evalModel = isBig(p.name) ? null : buildEval(cfg);
      built.set(p.name, {
        cfg,
        trainStep: ts.model,
        params: ts.params.map((q) => ({ name: q.value.name, shape: q.value.shape as number[], count: q.init.length })),
        evalModel,
        seconds: (performance.now() - t0) / 1000,
      });
    }
  });
  after(() => removeDir(dir));

  it('has the fashion-mnist presets and all eight paper ViT presets', function () {
    const names = listPresets().map((p) => p.name);
    for (const n of ['mlp-fmnist', 'vit-tiny-fmnist', ...PAPER_PRESETS]) expect(names, `preset ${n}`).to.include(n);
    for (const n of PAPER_PRESETS) {
      const m = built.get(n)!.cfg.model as VitConfig;
      expect(m.type).to.equal('vit');
      expect(m.patch, `${n} patch`).to.equal(/-(s|b)8-/.test(n) ? 8 : 16);
      expect(m.image, `${n} image`).to.deep.equal(n.endsWith('tinyimagenet') ? [3, 64, 64] : [3, 32, 32]);
      expect(m.classes, `${n} classes`).to.equal(n.endsWith('tinyimagenet') ? 200 : 100);
    }
  });

  it('every train step has input, labels, hyperparameters, params and optimizer state in; losses and next.* out, with matching shapes', function () {
    for (const [name, b] of built) {
      const { cfg, trainStep } = b;
      const ins = dimsOf(trainStep.graph!.input);
      const outs = dimsOf(trainStep.graph!.output);
      const [C, H, W] = cfg.model.image;
      expect(ins.get('input'), `${name} input`).to.deep.equal({ name: 'input', elemType: FLOAT, dims: [BATCH_DIM, C, H, W] });
      expect(ins.get('labels'), `${name} labels`).to.deep.equal({ name: 'labels', elemType: INT64, dims: [BATCH_DIM] });
      for (const h of HYPER_INPUTS[cfg.train.optimizer]) expect(ins.get(h)?.dims, `${name} hyperparameter ${h}`).to.deep.equal([]);
      for (const o of ['loss', 'ce_loss', 'lj_loss', 'correct']) expect(outs.get(o)?.dims, `${name} output ${o} is a scalar`).to.deep.equal([]);
      for (const p of b.params) {
        expect(ins.get(p.name)?.dims, `${name} param input ${p.name}`).to.deep.equal(p.shape);
        expect(outs.get(nextName(p.name))?.dims, `${name} ${nextName(p.name)}`).to.deep.equal(p.shape);
        for (const s of stateSlots(cfg.train.optimizer)) {
          const sn = stateName(s, p.name);
          expect(ins.get(sn)?.dims, `${name} state input ${sn}`).to.deep.equal(p.shape);
          expect(outs.get(nextName(sn))?.dims, `${name} ${nextName(sn)}`).to.deep.equal(p.shape);
        }
      }
      const nState = stateSlots(cfg.train.optimizer).length;
      expect(ins.size, `${name} input count`).to.equal(2 + HYPER_INPUTS[cfg.train.optimizer].length + b.params.length * (1 + nState));
      expect(outs.size, `${name} output count`).to.equal(4 + b.params.length * (1 + nState));
    }
  });

  it('every eval graph outputs logits [batch, classes], ce_loss and correct; its params match the train step', function () {
    for (const [name, b] of built) {
      if (!b.evalModel) continue;
      const ins = dimsOf(b.evalModel.graph!.input);
      const outs = dimsOf(b.evalModel.graph!.output);
      expect(outs.get('logits')?.dims, `${name} logits`).to.deep.equal([BATCH_DIM, b.cfg.model.classes]);
      expect(outs.get('ce_loss')?.dims, `${name} ce_loss`).to.deep.equal([]);
      expect(outs.get('correct')?.dims, `${name} correct`).to.deep.equal([]);
      expect([...ins.keys()].sort(), `${name} eval inputs`).to.deep.equal(['input', 'labels', ...b.params.map((p) => p.name)].sort());
      const names = (b.evalModel.graph!.node ?? []).map((n) => n.name!);
      for (const bad of ['lj/', 'grad/', 'optim/']) expect(names.filter((n) => n.includes(bad)), `${name} eval has no ${bad} nodes`).to.deep.equal([]);
    }
  });

  it('parameter counts follow from the architectures', function () {
    const count = (n: string) => built.get(n)!.params.reduce((a, p) => a + p.count, 0);
    expect(count('mlp-fmnist')).to.equal(784 * 256 + 256 + 256 * 128 + 128 + 128 * 10 + 10);
    // vit-tiny-fmnist by hand: patch 4 on 28x28 -> 49 patches of 16 pixels, 50 tokens, dim 64, MLP 256, 4 blocks.
    const block = 2 * (2 * 64) + (64 * 192 + 192) + (64 * 64 + 64) + (64 * 256 + 256) + (256 * 64 + 64);
    const tiny = 16 * 64 + 64 + 64 + 50 * 64 + 4 * block + 128 + (64 * 10 + 10);
    expect(tiny).to.equal(205066);
    expect(count('vit-tiny-fmnist')).to.equal(tiny);
    for (const [name, b] of built) {
      if (b.cfg.model.type !== 'vit') continue;
      expect(count(name), `${name} parameter count`).to.equal(vitParamCount(b.cfg.model));
      const L = (b.cfg.model.image[1] / b.cfg.model.patch) * (b.cfg.model.image[2] / b.cfg.model.patch) + 1;
      expect(b.params.find((p) => p.name === 'pos_embed')?.shape, `${name} pos_embed`).to.deep.equal([1, L, b.cfg.model.dim]);
    }
    // Each parameter's element count matches its shape.
    for (const [name, b] of built) for (const p of b.params) expect(p.count, `${name} ${p.name}`).to.equal(p.shape.reduce((x, y) => x * y, 1));
  });

  it('the LJ loss is in every train step (lj/ nodes) and attaches to the default feature', function () {
    for (const [name, b] of built) {
      const names = (b.trainStep.graph!.node ?? []).map((n) => n.name!);
      expect(names.some((n) => n.startsWith('lj/')), `${name} has lj/ nodes`).to.equal(b.cfg.lj.enabled);
    }
  });

  it('every forward/loss op of every train step has a gradient rule or is declared non-differentiable', function () {
    const seen = new Set<string>();
    for (const [name, b] of built) {
      const fwd = (b.trainStep.graph!.node ?? []).filter((n) => !/^(grad|optim)[/.]/.test(n.name!));
      expect(fwd.some((n) => n.name!.startsWith('ce/')), `${name}: forward+loss nodes include ce/`).to.equal(true);
      const bad = fwd
        .filter((n) => (n.domain && n.domain !== 'ai.onnx') || (!GRAD_RULES.has(n.opType!) && !NON_DIFFERENTIABLE.has(n.opType!)))
        .map((n) => `${n.domain ? n.domain + '.' : ''}${n.opType} (${n.name})`);
      expect(bad, `${name}: uncovered ops`).to.deep.equal([]);
      for (const n of fwd) seen.add(n.opType!);
    }
    // The ViT ops must be among those checked (guards against a vacuous filter).
    for (const op of ['MatMul', 'LayerNormalization', 'Softmax', 'Erf', 'Transpose', 'Concat', 'Expand', 'Gather', 'Relu', 'LogSoftmax', 'Clip', 'ReduceL2']) {
      expect(seen, `op ${op} seen`).to.include(op);
    }
  });

  it('uncoveredOps() finds nothing on the forward + CE + LJ graphs of the tiny presets, for each LJ attach point', function () {
    const cases: [string, string, 'tokens' | 'batch'][] = [
      ['mlp-fmnist', 'hidden', 'batch'],
      ['vit-tiny-fmnist', 'tokens', 'tokens'],
      ['vit-tiny-fmnist', 'cls', 'batch'],
    ];
    for (const [preset, on, particles] of cases) {
      const cfg = loadPreset(preset);
      cfg.lj.on = on;
      const f = buildForward(cfg, true);
      const { loss } = crossEntropy(f.b, f.model.logits, f.labels!);
      const at = ljAttach(cfg, f.model);
      expect(at.particles, `${preset} ${on} particles`).to.equal(particles);
      f.b.add(loss, ljLoss(f.b, at.feature, cfg.lj, at.particles));
      expect(uncoveredOps(f.b), `${preset} with LJ on ${on}`).to.deep.equal([]);
    }
  });

  it('named feature outputs have the documented build-time shapes', function () {
    const vit = buildForward(loadPreset('vit-tiny-fmnist'), false).model;
    expect(Object.keys(vit.features).sort()).to.deep.equal(['cls', 'tokens']);
    expect(vit.features.tokens.shape).to.deep.equal([BATCH_DIM, 50, 64]);
    expect(vit.features.cls.shape).to.deep.equal([BATCH_DIM, 64]);
    expect(vit.logits.shape).to.deep.equal([BATCH_DIM, 10]);
    expect(vit.defaultFeature).to.equal('tokens');
    const mlp = buildForward(loadPreset('mlp-fmnist'), false).model;
    expect(Object.keys(mlp.features)).to.deep.equal(['hidden']);
    expect(mlp.features.hidden.shape).to.deep.equal([BATCH_DIM, 128]);
    expect(mlp.defaultFeature).to.equal('hidden');
    for (const name of PAPER_PRESETS) {
      const m = built.get(name)!.cfg.model as VitConfig;
      const L = (m.image[1] / m.patch) * (m.image[2] / m.patch) + 1;
      const fw = buildForward({ ...built.get(name)!.cfg, model: { ...m, depth: 1 } }, false).model; // depth does not change shapes
      expect(fw.features.tokens.shape, `${name} tokens`).to.deep.equal([BATCH_DIM, L, m.dim]);
      expect(fw.features.cls.shape, `${name} cls`).to.deep.equal([BATCH_DIM, m.dim]);
      expect(fw.logits.shape, `${name} logits`).to.deep.equal([BATCH_DIM, m.classes]);
    }
  });

  it('feature outputs have the right run-time shapes on onnxruntime (batch 3)', async function () {
    const cases: [string, Record<string, number[]>][] = [
      ['vit-tiny-fmnist', { logits: [3, 10], tokens: [3, 50, 64], cls: [3, 64] }],
      ['mlp-fmnist', { logits: [3, 10], hidden: [3, 128] }],
    ];
    for (const [preset, want] of cases) {
      const cfg = loadPreset(preset);
      const init = buildForward(cfg, false).b.params;
      const weights = new Map(init.map((p) => [p.value.name, Float32Array.from(p.init)]));
      const sess = await createSession(encodeModel(buildInference(cfg, weights, true)), { threads: 1 });
      const x = Float32Array.from({ length: 3 * 28 * 28 }, (_, i) => Math.sin(i * 0.37));
      const out = await sess.run({ input: tensor('float32', x, [3, 1, 28, 28]) });
      expect(Object.keys(out).sort(), preset).to.deep.equal(Object.keys(want).sort());
      for (const [k, dims] of Object.entries(want)) {
        expect(Array.from(out[k].dims), `${preset} ${k}`).to.deep.equal(dims);
        for (const v of out[k].data as Float32Array) if (!Number.isFinite(v)) expect.fail(`${preset} ${k} has a non-finite value`);
      }
    }
  });

  it('the train step and eval graphs of every preset pass the ONNX checker (full_check)', function () {
    if (!pythonOnnxAvailable()) this.skip();
    const files: string[] = [];
    for (const [name, b] of built) {
      const f = path.join(dir, `${name}.train_step.onnx`);
      fs.writeFileSync(f, encodeModel(b.trainStep));
      files.push(f);
      if (b.evalModel) {
        const e = path.join(dir, `${name}.eval.onnx`);
        fs.writeFileSync(e, encodeModel(b.evalModel));
        files.push(e);
      }
    }
    expect(onnxCheck(files)).to.equal('');
  });

  it('reports how long the builds took (B/8 on 64x64 within 30 s)', function () {
    const b8 = built.get('vit-b8-tinyimagenet')!;
    expect(b8.seconds, 'vit-b8-tinyimagenet train step build seconds').to.be.below(30);
  });
});

describe('models: checker availability', function () {
  it('ONNX checker available (else the checker tests are skipped)', function () {
    if (!pythonOnnxAvailable()) {
      console.warn(`    note: ${SKIP_CHECKER_MSG}`);
      this.skip();
    }
  });
});
