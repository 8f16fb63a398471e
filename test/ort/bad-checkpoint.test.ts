/**
 * Bad checkpoints at the CLI: a truncated file, a corrupt one (garbage behind the right file
 * identifier), a wrong file identifier, a wrong format version, a renamed parameter and a wrong
 * shape are each refused by `export RUN`, `export --checkpoint FILE --eval-model FILE`, `eval RUN`
 * and `train GRAPHS --resume` (native and ort-training runs) with a one-line error and exit code 1,
 * and nothing is half-loaded or half-written: no output model appears, the run folder is unchanged.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { Checkpoint, decodeCheckpoint, encodeCheckpoint, readCheckpoint } from '../../src/artifacts/checkpoint';
import { listFiles, runMain, runOk } from '../cli/helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

type Variant = { name: string; make: (good: Uint8Array) => Uint8Array; error: RegExp };

/** Offset of the Checkpoint table's version field (field 0) in a flatbuffer. */
function versionOffset(b: Uint8Array): number {
  const dv = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const table = dv.getUint32(0, true);
  const vtable = table - dv.getInt32(table, true);
  return table + dv.getUint16(vtable + 4, true);
}

function edit(good: Uint8Array, f: (c: Checkpoint) => void): Uint8Array {
  const c = decodeCheckpoint(good);
  f(c);
  return encodeCheckpoint(c);
}

const VARIANTS: Variant[] = [
  { name: 'truncated', make: (g) => g.slice(0, Math.floor(g.length / 2)), error: /is truncated or corrupt|could not be parsed|has /i },
  {
    name: 'corrupt',
    make: (g) => {
      const b = Uint8Array.from(g);
      let s = 12345;
      for (let i = 8; i < b.length; i++) {
        s = (s * 1103515245 + 12345) >>> 0;
        b[i] = s >>> 24;
      }
      return b;
    },
    error: /is truncated or corrupt|could not be parsed|not an ORT training checkpoint|has /,
  },
  {
    name: 'wrong-identifier',
    make: (g) => {
      const b = Uint8Array.from(g);
      b.set([0x4f, 0x52, 0x54, 0x4d], 4); // 'ORTM'
      return b;
    },
    error: /not an ORT training checkpoint: file identifier is 'ORTM', expected 'ODTC'/,
  },
  {
    name: 'wrong-version',
    make: (g) => {
      const b = Uint8Array.from(g);
      new DataView(b.buffer).setInt32(versionOffset(b), 3, true);
      return b;
    },
    error: /format version 3; only version 2/,
  },
  {
    name: 'renamed-param',
    make: (g) =>
      edit(g, (c) => {
        c.requiresGradParams.find((t) => t.name === 'fc1.weight')!.name = 'fc1.w';
        const s = c.optimizer?.states.find((x) => x.paramName === 'fc1.weight');
        if (s) s.paramName = 'fc1.w';
      }),
    error: /does not match the model's parameters - missing from the checkpoint: fc1\.weight \| not in the model: fc1\.w/,
  },
  {
    name: 'wrong-shape',
    make: (g) =>
      edit(g, (c) => {
        const t = c.requiresGradParams.find((x) => x.name === 'head.bias')!;
        t.dims = [5];
        t.data = new Float32Array(5);
        for (const m of c.optimizer?.states.find((x) => x.paramName === 'head.bias')?.momentums ?? []) {
          m.dims = [5];
          m.data = new Float32Array(5);
        }
      }),
    error: /shape mismatch: head\.bias: checkpoint \[5\], model \[10\]/,
  },
];

describe('bad checkpoints are refused in one line by export, eval and train --resume', function () {
  this.timeout(300000);
  let root: string, data: string, graphs: string;
  const runs: Record<'native' | 'ort-training', string> = { native: '', 'ort-training': '' };

  before(async () => {
    root = tempDir('ljtrain-ort-badckpt-');
    data = writeTinyFashionMnist({ dir: path.join(root, 'data'), train: 64, test: 32 });
    graphs = path.join(root, 'g');
    await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '32,16', '--format', 'both', '--out', graphs]);
    for (const b of ['native', 'ort-training'] as const) {
      runs[b] = path.join(root, `run-${b}`);
      await runOk(['train', graphs, '--backend', b, '--run', runs[b], '--epochs', '1', '--batch', '32', '--data', data, '--no-progress']);
    }
  });
  after(() => removeDir(root));

  const oneLine = (r: { code: number; stderr: string }, re: RegExp, what: string) => {
    expect(r.code, `${what}: exit code`).to.equal(1);
    const lines = r.stderr.trim().split('\n');
    expect(lines, `${what}: one line, got ${r.stderr}`).to.have.length(1);
    expect(lines[0], what).to.match(/^ljtrain: /);
    expect(lines[0], what).to.match(re);
  };

  for (const v of VARIANTS) {
    describe(v.name, () => {
      it('is refused by readCheckpoint-based loading everywhere', async () => {
        for (const b of ['native', 'ort-training'] as const) {
          // A copy of the run with the bad last.ckpt.
          const run = path.join(root, `bad-${v.name}-${b}`);
          fs.cpSync(runs[b], run, { recursive: true });
          const good = fs.readFileSync(path.join(run, 'last.ckpt'));
          const bad = v.make(good);
          fs.writeFileSync(path.join(run, 'last.ckpt'), bad);
          const before = new Map(listFiles(run).map((f) => [f, fs.readFileSync(path.join(run, f))]));
          const ck = path.join(run, 'last.ckpt');

          const out = path.join(root, `out-${v.name}-${b}.onnx`);
          oneLine(await runMain(['export', run, '--out', out, '--no-verify']), v.error, `${b} export RUN`);
          expect(fs.existsSync(out), 'no output model').to.equal(false);

          oneLine(await runMain(['export', '--checkpoint', ck, '--eval-model', path.join(graphs, 'eval_model.onnx'), '--out', out, '--no-verify']), v.error, `${b} export --checkpoint`);
          expect(fs.existsSync(out), 'no output model').to.equal(false);

          oneLine(await runMain(['eval', run, '--data', data]), v.error, `${b} eval`);

          oneLine(await runMain(['train', graphs, '--run', run, '--resume', '--epochs', '2', '--batch', '32', '--data', data, '--no-progress']), v.error, `${b} train --resume`);

          // Nothing changed in the run folder, and no temp files were left.
          const after = listFiles(run);
          expect(after.sort(), 'run folder files').to.deep.equal([...before.keys()].sort());
          for (const [f, bytes] of before) expect(fs.readFileSync(path.join(run, f)).equals(bytes), `${f} unchanged`).to.equal(true);
        }
      });
    });
  }

  it('a checkpoint of another model given with an eval model is refused (names and shapes listed)', async () => {
    const vit = path.join(root, 'g-vit');
    await runOk(['build-graph', '--preset', 'vit-tiny-fmnist', '--dim', '16', '--depth', '1', '--heads', '2', '--patch', '7', '--format', 'ort', '--out', vit]);
    // ViT checkpoint without its config, with the MLP eval model: only the eval model can say what fits.
    const c = readCheckpoint(path.join(vit, 'checkpoint'));
    c.properties = { ints: {}, floats: {}, strings: {} };
    const f = path.join(root, 'vit-bare.ckpt');
    fs.writeFileSync(f, encodeCheckpoint(c));
    const out = path.join(root, 'mix.onnx');
    const r = await runMain(['export', '--checkpoint', f, '--eval-model', path.join(graphs, 'eval_model.onnx'), '--out', out]);
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/does not match the model's parameters - missing from the checkpoint: fc1\.weight.* \| not in the model: .*patch_embed\.weight/);
    expect(fs.existsSync(out)).to.equal(false);
    // With its config but the wrong eval model: refused too.
    const r2 = await runMain(['export', '--checkpoint', path.join(vit, 'checkpoint'), '--eval-model', path.join(graphs, 'eval_model.onnx'), '--out', out]);
    expect(r2.code).to.equal(1);
    expect(r2.stderr).to.match(/does not match the model's parameters/);
    expect(fs.existsSync(out)).to.equal(false);
  });
});
