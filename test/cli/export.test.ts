/**
 * `ljtrain export RUN --out model.onnx` (and `eval`): the exported model is inference-only
 * (input → logits, plus the named features with --with-features), carries the trained weights as
 * initializers, holds nothing of the LJ / loss / gradient / optimizer graphs, agrees with the eval
 * graph, loads in a plain onnxruntime-node session, and passes the ONNX checker; so do the native
 * train_step.onnx and eval.onnx.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import * as ortNode from 'onnxruntime-node';
import { epochBatches } from '../../src/data/batches';
import { loadFashionMnist } from '../../src/data/fashion-mnist';
import { tensorProtoData } from '../../src/onnx/proto';
import { SKIP_CHECKER_MSG, checkpointTensors, onnxCheck, pythonOnnxAvailable, readOnnx, runOk, vinfo } from './helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

const FORBIDDEN_SCOPES = ['lj/', 'grad/', 'optim/', 'ce/'];
const LOSS_OPS = ['OneHot', 'LogSoftmax', 'ArgMax'];

describe('cli: export and eval', function () {
  this.timeout(120000);
  let root: string, data: string;
  const runs: Record<'vit' | 'mlp', string> = { vit: '', mlp: '' };
  const graphs: Record<'vit' | 'mlp', string> = { vit: '', mlp: '' };

  before(async function () {
    root = tempDir('ljtrain-export-');
    data = writeTinyFashionMnist({ dir: path.join(root, 'data') });
    graphs.vit = path.join(root, 'g-vit');
    graphs.mlp = path.join(root, 'g-mlp');
    runs.vit = path.join(root, 'r-vit');
    runs.mlp = path.join(root, 'r-mlp');
    await runOk(['build-graph', '--preset', 'vit-tiny-fmnist', '--dim', '16', '--depth', '1', '--heads', '2', '--patch', '7', '--out', graphs.vit]);
    await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '32,16', '--out', graphs.mlp]);
    const common = ['--data', data, '--batch', '32', '--threads', '1', '--no-progress', '--lr', '0.01', '--schedule', 'constant'];
    await runOk(['train', graphs.vit, '--run', runs.vit, '--epochs', '2', ...common]);
    await runOk(['train', graphs.mlp, '--run', runs.mlp, '--epochs', '1', ...common]);
  });
  after(() => removeDir(root));

  const out = (name: string) => path.join(root, 'export', name);

  async function exportModel(kind: 'vit' | 'mlp', name: string, extra: string[] = []) {
    const file = out(name);
    const r = await runOk(['export', runs[kind], '--out', file, '--data', data, ...extra]);
    return { file, stdout: r.stdout };
  }

  for (const kind of ['vit', 'mlp'] as const) {
    it(`${kind}: input → logits only, trained weights as initializers, no LJ/loss/gradient/optimizer nodes`, async function () {
      const { file, stdout } = await exportModel(kind, `${kind}.onnx`);
      expect(stdout).to.match(new RegExp(`wrote ${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} \\(\\d+ KiB\\); its test accuracy: \\d+\\.\\d\\d%`));
      const m = readOnnx(file);
      const g = m.graph!;
      expect((g.input ?? []).map(vinfo)).to.deep.equal([{ name: 'input', elemType: 1, dims: ['batch', 1, 28, 28] }]);
      expect((g.output ?? []).map(vinfo)).to.deep.equal([{ name: 'logits', elemType: 1, dims: ['batch', 10] }]);
      const nodes = g.node ?? [];
      for (const s of FORBIDDEN_SCOPES) expect(nodes.filter((n) => n.name!.includes(s)).map((n) => n.name), `nodes named ${s}`).to.deep.equal([]);
      for (const op of LOSS_OPS) expect(nodes.filter((n) => n.opType === op).map((n) => n.name), `${op} nodes`).to.deep.equal([]);
      const inits = new Map((g.initializer ?? []).map((t) => [t.name!, tensorProtoData(t)]));
      const trained = checkpointTensors(path.join(runs[kind], 'last.ckpt'));
      const initial = checkpointTensors(path.join(graphs[kind], 'initial.ckpt'));
      let changed = 0;
      for (const [name, w] of trained) {
        const t = inits.get(name);
        expect(t, `initializer ${name}`).to.not.equal(undefined);
        expect(t!.dtype).to.equal('float32');
        expect(Array.from(t!.data as Float32Array), `initializer ${name} = last.ckpt`).to.deep.equal(Array.from(w));
        if (Array.from(w).some((x, i) => x !== initial.get(name)![i])) changed++;
      }
      expect(changed, 'trained weights differ from the initial ones').to.equal(trained.size);
      // Nothing else that looks like training state.
      for (const n of inits.keys()) expect(n.startsWith('opt.') || n.startsWith('next.'), n).to.equal(false);
    });
  }

  it('--with-features adds the named features: vit tokens [batch,17,16], cls [batch,16]; mlp hidden [batch,16]', async function () {
    const v = readOnnx((await exportModel('vit', 'vit-features.onnx', ['--with-features', '--no-verify'])).file);
    expect((v.graph!.output ?? []).map(vinfo)).to.deep.equal([
      { name: 'logits', elemType: 1, dims: ['batch', 10] },
      { name: 'tokens', elemType: 1, dims: ['batch', 17, 16] },
      { name: 'cls', elemType: 1, dims: ['batch', 16] },
    ]);
    expect((v.graph!.input ?? []).map((x) => x.name)).to.deep.equal(['input']);
    for (const s of FORBIDDEN_SCOPES) expect((v.graph!.node ?? []).filter((n) => n.name!.includes(s)), s).to.have.length(0);
    const m = readOnnx((await exportModel('mlp', 'mlp-features.onnx', ['--with-features', '--no-verify'])).file);
    expect((m.graph!.output ?? []).map(vinfo)).to.deep.equal([
      { name: 'logits', elemType: 1, dims: ['batch', 10] },
      { name: 'hidden', elemType: 1, dims: ['batch', 16] },
    ]);
  });

  it('--no-verify writes the model without measuring it', async function () {
    const { file, stdout } = await exportModel('mlp', 'mlp-noverify.onnx', ['--no-verify']);
    expect(fs.existsSync(file)).to.equal(true);
    expect(stdout).to.not.include('accuracy');
  });

  it('loads in a plain onnxruntime-node InferenceSession; logits match the eval graph within 1e-5 on the test split; features run with the right shapes', async function () {
    for (const kind of ['vit', 'mlp'] as const) {
      const file = out(`${kind}.onnx`);
      const feat = out(`${kind}-features.onnx`);
      expect(fs.existsSync(file) && fs.existsSync(feat), 'exported by the earlier tests').to.equal(true);
      const exported = await ortNode.InferenceSession.create(file);
      const withFeatures = await ortNode.InferenceSession.create(feat);
      expect(exported.inputNames).to.deep.equal(['input']);
      expect(exported.outputNames).to.deep.equal(['logits']);
      const evalSess = await ortNode.InferenceSession.create(path.join(runs[kind], 'eval.onnx'));
      const weights = checkpointTensors(path.join(runs[kind], 'last.ckpt'));
      const evalModel = readOnnx(path.join(runs[kind], 'eval.onnx'));
      const dims = new Map((evalModel.graph!.input ?? []).map((x) => [x.name!, vinfo(x).dims as number[]]));
      const test = loadFashionMnist(data).test;
      let maxDiff = 0, n = 0;
      for (const bt of epochBatches(test, { batchSize: 50 })) {
        const input = new ortNode.Tensor('float32', bt.x, [bt.size, 1, 28, 28]);
        const feeds: Record<string, ortNode.Tensor> = { input, labels: new ortNode.Tensor('int64', bt.y, [bt.size]) };
        for (const [name, w] of weights) feeds[name] = new ortNode.Tensor('float32', w, dims.get(name)!);
        const ev = await evalSess.run(feeds);
        const ex = await exported.run({ input });
        const fx = await withFeatures.run({ input });
        expect(Array.from(ex.logits.dims)).to.deep.equal([bt.size, 10]);
        const a = ev.logits.data as Float32Array, b = ex.logits.data as Float32Array, c = fx.logits.data as Float32Array;
        for (let i = 0; i < a.length; i++) maxDiff = Math.max(maxDiff, Math.abs(a[i] - b[i]), Math.abs(a[i] - c[i]));
        if (kind === 'vit') {
          expect(Array.from(fx.tokens.dims)).to.deep.equal([bt.size, 17, 16]);
          expect(Array.from(fx.cls.dims)).to.deep.equal([bt.size, 16]);
          // cls is token 0 of the tokens output.
          const t = fx.tokens.data as Float32Array, k = fx.cls.data as Float32Array;
          for (let s = 0; s < bt.size; s++) for (let d = 0; d < 16; d++) expect(k[s * 16 + d]).to.equal(t[s * 17 * 16 + d]);
        } else {
          expect(Array.from(fx.hidden.dims)).to.deep.equal([bt.size, 16]);
        }
        n += bt.size;
      }
      expect(n).to.equal(128);
      expect(maxDiff, `${kind}: max |exported − eval| logits`).to.be.at.most(1e-5);
    }
  });

  it("the accuracy export prints equals `ljtrain eval RUN`'s and the accuracy of the exported logits", async function () {
    for (const kind of ['vit', 'mlp'] as const) {
      const ex = await exportModel(kind, `${kind}-acc.onnx`);
      const ev = await runOk(['eval', runs[kind], '--data', data]);
      const exAcc = /its test accuracy: (\d+\.\d\d)%/.exec(ex.stdout)?.[1];
      const evAcc = /test acc (\d+\.\d\d)% on 128 images/.exec(ev.stdout)?.[1];
      expect(exAcc, ex.stdout).to.be.a('string');
      expect(evAcc, ev.stdout).to.be.a('string');
      expect(exAcc, `${kind}: export vs eval accuracy`).to.equal(evAcc);
      expect(ev.stdout).to.include(`(epoch ${kind === 'vit' ? 2 : 1})`);
      const metrics = fs.readFileSync(path.join(runs[kind], 'metrics.jsonl'), 'utf8').trim().split('\n').map((l) => JSON.parse(l));
      expect((100 * metrics[metrics.length - 1].test_acc).toFixed(2), `${kind}: eval = the last epoch's test_acc`).to.equal(evAcc);
      // Independently, from the exported model's logits.
      const sess = await ortNode.InferenceSession.create(ex.file);
      const test = loadFashionMnist(data).test;
      let correct = 0;
      for (const bt of epochBatches(test, { batchSize: 128 })) {
        const lg = (await sess.run({ input: new ortNode.Tensor('float32', bt.x, [bt.size, 1, 28, 28]) })).logits.data as Float32Array;
        for (let i = 0; i < bt.size; i++) {
          let best = 0;
          for (let k = 1; k < 10; k++) if (lg[i * 10 + k] > lg[i * 10 + best]) best = k;
          if (BigInt(best) === bt.y[i]) correct++;
        }
      }
      expect((100 * correct / 128).toFixed(2)).to.equal(exAcc);
    }
  });

  it('--best exports the best checkpoint', async function () {
    const { file } = await exportModel('vit', 'vit-best.onnx', ['--best', '--no-verify']);
    const inits = new Map((readOnnx(file).graph!.initializer ?? []).map((t) => [t.name!, tensorProtoData(t).data as Float32Array]));
    for (const [name, w] of checkpointTensors(path.join(runs.vit, 'best.ckpt'))) expect(Array.from(inits.get(name)!), name).to.deep.equal(Array.from(w));
  });

  it('the exported models, and the native train_step.onnx and eval.onnx, pass the ONNX checker (full_check)', function () {
    if (!pythonOnnxAvailable()) {
      console.warn(`    note: ${SKIP_CHECKER_MSG}`);
      this.skip();
    }
    const files = ['vit.onnx', 'vit-features.onnx', 'mlp.onnx', 'mlp-features.onnx'].map(out);
    for (const kind of ['vit', 'mlp'] as const) {
      for (const f of ['train_step.onnx', 'eval.onnx']) files.push(path.join(graphs[kind], f), path.join(runs[kind], f));
    }
    for (const f of files) expect(fs.existsSync(f), f).to.equal(true);
    expect(onnxCheck(files)).to.equal('');
  });
});
