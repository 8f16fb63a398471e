import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { SweepOptions, runSweep } from '../../src/experiments/sweep';
import { readMetrics } from '../../src/train/metrics';
import { cli, tinyFashionMnist, tmpDir } from './helpers';

describe('experiments/sweep', () => {
  let data: string, root: string;
  const logs: string[] = [];
  const opts = (out: string, more: Partial<SweepOptions> = {}): SweepOptions => ({
    preset: 'mlp-fmnist', hidden: [16], epochs: 1, data, threads: 1, quiet: true, progress: false, out, seeds: [1], sigmas: [0.5, 1], ns: [6], log: (l) => logs.push(l), ...more,
  });
  before(() => {
    data = tinyFashionMnist();
    root = tmpDir('sweep');
  });
  after(() => {
    fs.rmSync(data, { recursive: true, force: true });
    fs.rmSync(root, { recursive: true, force: true });
  });

  it('runs one baseline and one LJ run per setting, writes the table and the plot, and skips finished runs when called again', async () => {
    const out = path.join(root, 'grid');
    const r = await runSweep(opts(out));
    expect(r.complete).to.equal(true);
    expect(r.outcomes.map((o) => `${o.arm.name}:${o.action}`)).to.deep.equal(['baseline-s1:trained', 'lj-sigma0.5-n6-eps0.1-s1:trained', 'lj-sigma1-n6-eps0.1-s1:trained']);
    const rc = (arm: string) => JSON.parse(fs.readFileSync(path.join(out, 'runs', arm, 'run-config.json'), 'utf8'));
    expect(rc('lj-sigma1-n6-eps0.1-s1').lj).to.include({ enabled: true, sigma: 1, n: 6, epsilon: 0.1 });
    expect(rc('baseline-s1').lj.enabled).to.equal(false);

    const md = fs.readFileSync(path.join(out, 'table.md'), 'utf8');
    expect(md).to.contain('| Arm | σ | n | ε | Train Acc | Test Acc | Max Test Acc | Δt |');
    expect(md).to.match(/\| baseline \| {2}\| {2}\| {2}\| \d+\.\d\d \|/);
    expect(md).to.match(/\| LJ \| 0\.5 \| 6 \| 0\.1 \| \d+\.\d\d \([+-]\d+\.\d\d\) \|/);
    expect(md).to.match(/\| LJ \| 1 \| 6 \| 0\.1 \| /);
    const b = 100 * readMetrics(path.join(out, 'runs', 'baseline-s1'))[0].test_acc;
    const l = 100 * readMetrics(path.join(out, 'runs', 'lj-sigma1-n6-eps0.1-s1'))[0].test_acc;
    expect(r.summaries![1].metrics.test_acc.diff).to.be.closeTo(l - b, 1e-9);
    const csv = fs.readFileSync(path.join(out, 'table.csv'), 'utf8').trim().split('\n');
    expect(csv[0]).to.match(/^arm,sigma,n,epsilon,seeds,epochs,train_acc,/);
    expect(csv).to.have.length(4); // header, baseline, two settings
    expect(fs.readFileSync(path.join(out, 'sweep.svg'), 'utf8')).to.contain('>n=6<');
    expect(fs.readFileSync(path.join(out, 'sweep.png')).subarray(1, 4).toString()).to.equal('PNG');

    const again = await runSweep(opts(out));
    expect(again.outcomes.map((o) => o.action)).to.deep.equal(['skipped', 'skipped', 'skipped']);
    expect(again.markdown).to.equal(r.markdown);
  });

  it('resumes an interrupted sweep', async () => {
    const out = path.join(root, 'interrupted');
    const first = await runSweep(opts(out, { epochs: 2, sigmas: [0.5], stopAfterEpochs: 1 }));
    expect(first.complete).to.equal(false);
    const second = await runSweep(opts(out, { epochs: 2, sigmas: [0.5] }));
    expect(second.outcomes.map((o) => o.action)).to.deep.equal(['resumed', 'trained']);
    expect(second.outcomes.every((o) => o.metrics.length === 2)).to.equal(true);
  });

  it('refuses a different grid in the same folder, and a compare folder', async () => {
    const out = path.join(root, 'grid');
    const other = await runSweep(opts(out, { ns: [6, 12] })).then(() => null, (e: Error) => e);
    expect(other?.message).to.match(/different sweep experiment \(grid\.n\[1\]|different sweep experiment \(grid\.n: \[6\] -> \[6,12\]/);
    fs.mkdirSync(path.join(root, 'cmp'));
    fs.writeFileSync(path.join(root, 'cmp', 'compare.json'), '{}');
    const cmp = await runSweep(opts(path.join(root, 'cmp'))).then(() => null, (e: Error) => e);
    expect(cmp?.message).to.match(/holds a compare experiment/);
  });

  it('bad lists and bad settings are one-line errors naming the option', async () => {
    for (const [flag, bad] of [['--sigma', '0.5,x'], ['--n', '6,'], ['--epsilon', 'a'], ['--seeds', '1,-2']]) {
      const r = await cli(['sweep', '--preset', 'mlp-fmnist', flag, bad, '--out', path.join(root, 'bad')]);
      expect(r.code, flag).to.equal(1);
      expect(r.err, flag).to.contain(flag);
      expect(r.err.trim().split('\n'), flag).to.have.length(1);
    }
    const neg = await cli(['sweep', '--preset', 'mlp-fmnist', '--sigma', '0.5,-1', '--data', data, '--out', path.join(root, 'bad')]);
    expect(neg.code).to.equal(1);
    expect(neg.err).to.match(/sigma/);
    expect(fs.existsSync(path.join(root, 'bad'))).to.equal(false);
  });
});
