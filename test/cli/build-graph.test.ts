/**
 * `ljtrain build-graph`: the standalone LJ loss graph (--preset lj-loss) — I/O, ONNX checker, values
 * against the float64 PyTorch golden cases and against the same loss built in-process, each LJ option
 * honoured — and a preset's graphs folder (files, manifest hashes, --list).
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { GraphBuilder } from '../../src/graph/builder';
import { backward } from '../../src/grad/backward';
import { LJOptions, ljLoss } from '../../src/losses/lj';
import { sha256 } from '../../src/artifacts/manifest';
import { encodeModel } from '../../src/onnx/proto';
import { Rng } from '../../src/graph/rng';
import { createSession, ort, tensor } from '../../src/runtime/session';
import { SKIP_CHECKER_MSG, onnxCheck, projectRoot, pythonOnnxAvailable, readOnnx, runOk, vinfo } from './helpers';
import { removeDir, tempDir } from '../helpers/tiny-data';

interface GoldenCase {
  name: string;
  variant: 'paper' | 'adaptive';
  particles: 'tokens' | 'batch';
  sigma: number;
  n: number;
  epsilon: number;
  clampMax: number;
  shape: number[];
  features: number[];
  loss: number;
  grad: number[];
}

const GOLDEN: GoldenCase[] = JSON.parse(fs.readFileSync(path.join(projectRoot(), 'test', 'fixtures', 'lj-golden.json'), 'utf8')).cases;

async function runLjFile(file: string, features: Float32Array, dims: number[]): Promise<{ loss: ort.Tensor; grad: ort.Tensor }> {
  const sess = await createSession(file, { threads: 1 });
  const out = await sess.run({ features: tensor('float32', features, dims) });
  return { loss: out.loss, grad: out.features_grad };
}

/** CLI flags for LJ options. */
function ljFlags(o: Partial<LJOptions>): string[] {
  const f: string[] = [];
  if (o.sigma !== undefined) f.push('--sigma', String(o.sigma));
  if (o.n !== undefined) f.push('--n', String(o.n));
  if (o.epsilon !== undefined) f.push('--epsilon', String(o.epsilon));
  if (o.clampMax !== undefined) f.push('--clamp-max', String(o.clampMax));
  if (o.variant !== undefined) f.push('--variant', o.variant);
  return f;
}

describe('cli: build-graph', function () {
  this.timeout(120000);
  let root: string;
  let k = 0;
  before(() => (root = tempDir('ljtrain-bg-')));
  after(() => removeDir(root));

  async function buildLj(shape: number[], o: Partial<LJOptions> = {}): Promise<string> {
    const out = path.join(root, `lj-${k++}`);
    const r = await runOk(['build-graph', '--preset', 'lj-loss', '--features-shape', shape.join(','), '--out', out, ...ljFlags(o)]);
    const file = path.join(out, 'lj_loss.onnx');
    expect(r.stdout.trim()).to.equal(`wrote ${file}`);
    return file;
  }

  it('--preset lj-loss --features-shape 2,5,4 writes lj_loss.onnx: features float32 [2,5,4] → loss (scalar), features_grad [2,5,4]', async function () {
    const file = await buildLj([2, 5, 4]);
    const g = readOnnx(file).graph!;
    expect((g.input ?? []).map(vinfo)).to.deep.equal([{ name: 'features', elemType: 1, dims: [2, 5, 4] }]);
    expect((g.output ?? []).map(vinfo)).to.deep.equal([
      { name: 'loss', elemType: 1, dims: [] },
      { name: 'features_grad', elemType: 1, dims: [2, 5, 4] },
    ]);
    const x = Float32Array.from({ length: 40 }, (_, i) => Math.cos(i * 1.3));
    const r = await runLjFile(file, x, [2, 5, 4]);
    expect(Array.from(r.loss.dims)).to.deep.equal([]);
    expect(Array.from(r.grad.dims)).to.deep.equal([2, 5, 4]);
    if (pythonOnnxAvailable()) expect(onnxCheck([file])).to.equal('');
    else console.warn(`    note: ${SKIP_CHECKER_MSG}`);
  });

  it('matches the float64 PyTorch golden values (test/fixtures/lj-golden.json) for every (b, l, d) case, options passed as flags', async function () {
    const cases = GOLDEN.filter((c) => c.particles === 'tokens' && c.shape.length === 3);
    expect(cases.length).to.be.at.least(10);
    for (const c of cases) {
      const file = await buildLj(c.shape, { sigma: c.sigma, n: c.n, epsilon: c.epsilon, clampMax: c.clampMax, variant: c.variant });
      const r = await runLjFile(file, Float32Array.from(c.features), c.shape);
      const loss = (r.loss.data as Float32Array)[0];
      expect(Math.abs(loss - c.loss), `${c.name}: loss ${loss} vs ${c.loss}`).to.be.at.most(1e-6 + 2e-5 * Math.abs(c.loss));
      const g = r.grad.data as Float32Array;
      const D = c.shape[2];
      for (let row = 0; row * D < g.length; row++) {
        let scale = 0;
        for (let j = 0; j < D; j++) scale = Math.max(scale, Math.abs(c.grad[row * D + j]));
        for (let j = 0; j < D; j++) {
          const i = row * D + j;
          const tol = 1e-7 + 1e-3 * Math.abs(c.grad[i]) + 1e-4 * scale;
          if (!(Math.abs(g[i] - c.grad[i]) <= tol)) expect.fail(`${c.name}: grad[${i}] ${g[i]} vs ${c.grad[i]}`);
        }
      }
    }
  });

  it('matches the same loss built in-process (ljLoss + backward) on random features, for both variants', async function () {
    const rng = new Rng(21);
    const shape = [3, 6, 5];
    const x = Float32Array.from({ length: 90 }, () => rng.normal());
    for (const o of [{ sigma: 0.7, n: 4, epsilon: 0.3, clampMax: 3, variant: 'paper' as const }, { sigma: 1.2, n: 6, epsilon: 2, clampMax: 8, variant: 'adaptive' as const }]) {
      const cli = await runLjFile(await buildLj(shape, o), x, shape);
      const b = new GraphBuilder();
      const f = b.input('features', 'float32', shape);
      const loss = ljLoss(b, f, o, 'tokens');
      const [g] = backward(b, loss, [f]);
      b.output(loss, 'loss');
      b.output(g!, 'features_grad');
      const sess = await createSession(encodeModel(b.toModel()), { threads: 1 });
      const ref = await sess.run({ features: tensor('float32', x, shape) });
      expect((cli.loss.data as Float32Array)[0], `${o.variant} loss`).to.equal((ref.loss.data as Float32Array)[0]);
      expect(Array.from(cli.grad.data as Float32Array), `${o.variant} gradient`).to.deep.equal(Array.from(ref.features_grad.data as Float32Array));
    }
  });

  it('honours --sigma, --n, --epsilon, --clamp-max and --variant (each changes the loss; defaults are the listing: σ 1, n 6, ε 0.1, clamp 5, paper)', async function () {
    const c = GOLDEN.find((x) => x.name === 'paper-tokens-s1.0-n6-2x5x4')!;
    const x = Float32Array.from(c.features);
    const lossOf = async (o: Partial<LJOptions>) => (await runLjFile(await buildLj([2, 5, 4], o), x, [2, 5, 4])).loss.data[0] as number;
    const base = await lossOf({});
    expect(base, 'defaults reproduce the σ=1, n=6, ε=0.1, clamp 5 golden case').to.be.closeTo(c.loss, 1e-6 + 2e-5 * c.loss);
    const variants: [string, Partial<LJOptions>][] = [
      ['--sigma 0.8', { sigma: 0.8 }],
      ['--n 4', { n: 4 }],
      ['--epsilon 0.3', { epsilon: 0.3 }],
      ['--clamp-max 2', { clampMax: 2 }],
      ['--variant adaptive', { variant: 'adaptive' }],
    ];
    for (const [what, o] of variants) {
      const l = await lossOf(o);
      expect(Math.abs(l - base), `${what} changes the loss (${l} vs ${base})`).to.be.above(1e-4);
    }
    expect(await lossOf({ epsilon: 0.3 }), 'ε scales the loss linearly').to.be.closeTo(3 * base, 1e-5);
    expect(await lossOf({ variant: 'paper' }), '--variant paper is the default').to.equal(base);
  });

  it('a preset writes train_step.onnx, eval.onnx, initial.ckpt and manifest.json with their sha256', async function () {
    const out = path.join(root, 'mlp');
    const r = await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '8', '--no-lj', '--init-seed', '3', '--out', out]);
    expect(r.stdout).to.include(path.join(out, 'manifest.json'));
    expect(fs.readdirSync(out).sort()).to.deep.equal(['eval.onnx', 'initial.ckpt', 'manifest.json', 'train_step.onnx']);
    const m = JSON.parse(fs.readFileSync(path.join(out, 'manifest.json'), 'utf8'));
    expect(Object.keys(m.files).sort()).to.deep.equal(['eval.onnx', 'initial.ckpt', 'train_step.onnx']);
    for (const [f, h] of Object.entries(m.files)) expect(sha256(path.join(out, f)), f).to.equal(h);
    expect(m.preset).to.equal('mlp-fmnist');
    expect(m.config.model.hidden).to.deep.equal([8]);
    expect(m.config.initSeed).to.equal(3);
    expect(m.config.lj.enabled).to.equal(false);
    expect(m.params.map((p: { name: string }) => p.name)).to.deep.equal(['fc1.weight', 'fc1.bias', 'head.weight', 'head.bias']);
    expect(m.trainStep.inputs).to.include('input').and.to.include('labels');
  });

  it('--list names every preset and lj-loss', async function () {
    const r = await runOk(['build-graph', '--list']);
    const names = r.stdout.trim().split('\n').map((l) => l.split(/\s+/)[0]);
    const presets = fs.readdirSync(path.join(projectRoot(), 'presets')).filter((f) => f.endsWith('.json')).map((f) => f.slice(0, -5));
    expect(names.sort()).to.deep.equal([...presets, 'lj-loss'].sort());
  });
});
