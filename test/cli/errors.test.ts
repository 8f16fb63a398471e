/**
 * Bad input, run as a real process (`node dist/src/cli/main.js`, LJTRAIN_DEBUG unset): each case
 * must give one line on stderr that names the option (or the file at fault), a non-zero exit code,
 * no stack trace, and nothing on stdout.
 */
import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { trainRun } from '../../src/cli/train';
import { CliResult, limited, runMain, runOk, spawnCli } from './helpers';
import { removeDir, tempDir, writeTinyFashionMnist } from '../helpers/tiny-data';

interface BadCase {
  what: string;
  args: () => string[];
  /** The message must match all of these (functions: a literal substring, resolved at test time). */
  says: (RegExp | (() => string))[];
}

describe('cli: bad input gives one line on stderr, a non-zero exit and no stack trace', function () {
  this.timeout(120000);
  let root: string, data: string, graphs: string, tampered: string, noCkptRun: string, notGraphs: string, emptyData: string;
  const lj = (...extra: string[]) => ['build-graph', '--preset', 'lj-loss', '--features-shape', '2,5,4', '--out', path.join(root, 'lj'), ...extra];
  const results = new Map<string, CliResult>();

  const cases: BadCase[] = [
    { what: '--n 0', args: () => lj('--n', '0'), says: [/(--n\b|\bn=0)/] },
    { what: '--n -1', args: () => lj('--n', '-1'), says: [/(--n\b|\bn=-1)/] },
    { what: '--n abc', args: () => lj('--n', 'abc'), says: [/--n\b/, /abc/] },
    { what: '--sigma 0', args: () => lj('--sigma', '0'), says: [/sigma/, /\b0\b/] },
    { what: '--sigma -1', args: () => lj('--sigma', '-1'), says: [/sigma/, /-1/] },
    { what: '--features-shape 2,0,4', args: () => ['build-graph', '--preset', 'lj-loss', '--features-shape', '2,0,4', '--out', path.join(root, 'lj')], says: [/--features-shape/, /2,0,4/] },
    { what: '--features-shape 2,5', args: () => ['build-graph', '--preset', 'lj-loss', '--features-shape', '2,5', '--out', path.join(root, 'lj')], says: [/--features-shape/, /3 dimensions|B,L,D/] },
    { what: '--features-shape a,b,c', args: () => ['build-graph', '--preset', 'lj-loss', '--features-shape', 'a,b,c', '--out', path.join(root, 'lj')], says: [/--features-shape/, /a,b,c/] },
    { what: '--preset nosuch', args: () => ['build-graph', '--preset', 'nosuch', '--out', path.join(root, 'x')], says: [/preset/, /nosuch/, /mlp-fmnist/] },
    { what: '--variant foo', args: () => lj('--variant', 'foo'), says: [/--variant/, /foo/, /paper/] },
    { what: 'train on a folder without manifest.json', args: () => ['train', notGraphs, '--run', path.join(root, 'r1'), '--data', data], says: [/manifest\.json/, () => notGraphs] },
    { what: 'train with a tampered train_step.onnx', args: () => ['train', tampered, '--run', path.join(root, 'r2'), '--data', data], says: [/sha256/, /train_step\.onnx/] },
    { what: 'export of a folder that is not a run', args: () => ['export', graphs, '--out', path.join(root, 'm.onnx')], says: [/not a run folder/, () => graphs] },
    { what: 'eval of a run with no checkpoint yet', args: () => ['eval', noCkptRun], says: [/last\.ckpt/] },
    { what: 'export of a run with no checkpoint yet', args: () => ['export', noCkptRun, '--out', path.join(root, 'm2.onnx')], says: [/last\.ckpt/] },
    { what: '--data pointing to a folder lacking the files', args: () => ['train', graphs, '--run', path.join(root, 'r3'), '--data', emptyData], says: [/train-images-idx3-ubyte/, () => emptyData] },
    { what: 'eval --data pointing to a folder lacking the files', args: () => ['eval', path.join(root, 'r-ok'), '--data', emptyData], says: [/lacks/, () => emptyData] },
    { what: '--data pointing to a missing folder', args: () => ['train', graphs, '--run', path.join(root, 'r4'), '--data', path.join(root, 'nope')], says: [/not found/, /nope/] },
    { what: 'train into an existing run folder without --resume/--force', args: () => ['train', graphs, '--run', path.join(root, 'r-ok'), '--data', data], says: [/already holds a run/, /--resume/, /--force/] },
    { what: '--epochs 0', args: () => ['train', graphs, '--run', path.join(root, 'r5'), '--data', data, '--epochs', '0'], says: [/--epochs/] },
    { what: '--lr abc', args: () => ['train', graphs, '--run', path.join(root, 'r6'), '--data', data, '--lr', 'abc'], says: [/--lr/, /abc/] },
    { what: '--optimizer adam', args: () => ['train', graphs, '--run', path.join(root, 'r7'), '--data', data, '--optimizer', 'adam'], says: [/--optimizer/, /adamw, sgd/] },
    { what: '--hidden on a ViT preset', args: () => ['build-graph', '--preset', 'vit-tiny-fmnist', '--hidden', '8', '--out', path.join(root, 'x2')], says: [/--hidden/] },
    { what: '--heads not dividing --dim', args: () => ['build-graph', '--preset', 'vit-tiny-fmnist', '--dim', '10', '--heads', '3', '--out', path.join(root, 'x3')], says: [/heads/, /dim/] },
  ];

  before(async function () {
    root = tempDir('ljtrain-errors-');
    data = writeTinyFashionMnist({ dir: path.join(root, 'data'), train: 64, test: 32 });
    graphs = path.join(root, 'g');
    await runOk(['build-graph', '--preset', 'mlp-fmnist', '--hidden', '8', '--out', graphs]);
    tampered = path.join(root, 'g-tampered');
    fs.cpSync(graphs, tampered, { recursive: true });
    const ts = path.join(tampered, 'train_step.onnx');
    const bytes = fs.readFileSync(ts);
    bytes[bytes.length - 10] ^= 0xff;
    fs.writeFileSync(ts, bytes);
    notGraphs = path.join(root, 'not-graphs');
    fs.mkdirSync(notGraphs);
    fs.writeFileSync(path.join(notGraphs, 'train_step.onnx'), fs.readFileSync(path.join(graphs, 'train_step.onnx')));
    emptyData = path.join(root, 'empty-data');
    fs.mkdirSync(emptyData);
    fs.writeFileSync(path.join(emptyData, 'README'), 'no IDX files here\n');
    // A run that never finished an epoch: train fails on bad data after writing the run folder.
    noCkptRun = path.join(root, 'r-no-ckpt');
    let failed = false;
    try {
      await trainRun(graphs, { run: noCkptRun, data: emptyData, quiet: true, progress: false });
    } catch {
      failed = true;
    }
    expect(failed, 'training on a folder without data fails').to.equal(true);
    expect(fs.existsSync(path.join(noCkptRun, 'run-config.json'))).to.equal(true);
    expect(fs.existsSync(path.join(noCkptRun, 'last.ckpt'))).to.equal(false);
    await runOk(['train', graphs, '--run', path.join(root, 'r-ok'), '--data', data, '--epochs', '1', '--threads', '1', '--no-progress']);
    const res = await limited(2, cases.map((c) => () => spawnCli(c.args())));
    cases.forEach((c, i) => results.set(c.what, res[i]));
  });
  after(() => removeDir(root));

  for (const c of cases) {
    it(c.what, function () {
      const r = results.get(c.what)!;
      const show = `exit ${r.code}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`;
      expect(r.code, show).to.not.equal(0);
      const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
      expect(lines, show).to.have.length(1);
      expect(r.stderr, `stack trace\n${show}`).to.not.match(/^\s+at /m);
      expect(r.stderr, show).to.not.match(/\.(ts|js):\d+/);
      expect(r.stdout, show).to.equal('');
      for (const re of c.says) {
        if (typeof re === 'function') expect(lines[0], show).to.include(re());
        else expect(lines[0], show).to.match(re);
      }
    });
  }

  it('in-process main() returns 1 with the same single line (no throw)', async function () {
    const r = await runMain(lj('--sigma', '0'));
    expect(r.code).to.equal(1);
    expect(r.stderr.trim().split('\n')).to.have.length(1);
    expect(r.stderr).to.match(/sigma/);
  });

  it('the failed commands left nothing behind: no lj_loss.onnx, no graphs folder for a bad preset, no run for a bad option', function () {
    expect(fs.existsSync(path.join(root, 'lj', 'lj_loss.onnx'))).to.equal(false);
    expect(fs.existsSync(path.join(root, 'x'))).to.equal(false);
    expect(fs.existsSync(path.join(root, 'r5'))).to.equal(false);
    expect(fs.existsSync(path.join(root, 'm.onnx'))).to.equal(false);
  });
});
