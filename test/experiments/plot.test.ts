import { expect } from 'chai';
import * as fs from 'node:fs';
import * as path from 'node:path';
import { curvesSpec, readMetricsCsv, renderSvg, svgToPng, sweepSpec } from '../../src/experiments/plot';
import { plotRuns, runLabels } from '../../src/cli/plot';
import { EpochMetrics, appendMetrics } from '../../src/train/metrics';
import { cli, tmpDir } from './helpers';

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);

function fakeRun(dir: string, accs: number[]): void {
  fs.mkdirSync(dir, { recursive: true });
  accs.forEach((a, i) => {
    const m: EpochMetrics = { epoch: i + 1, lr: 1e-3, train_ce: 2 - a, train_lj: 0.1, train_acc: a + 0.02, test_loss: 2.1 - a, test_acc: a, max_test_acc: Math.max(...accs.slice(0, i + 1)), epoch_seconds: 3, samples_per_s: 2000 };
    appendMetrics(dir, m);
  });
}

describe('experiments/plot', () => {
  let root: string;
  before(() => {
    root = tmpDir('plot');
    fakeRun(path.join(root, 'alpha'), [0.5, 0.6, 0.65, 0.7]);
    fakeRun(path.join(root, 'beta'), [0.45, 0.62, 0.7]);
  });
  after(() => fs.rmSync(root, { recursive: true, force: true }));

  it('reads metrics.csv by column name', () => {
    const m = readMetricsCsv(path.join(root, 'alpha'));
    expect(m.map((r) => r.epoch)).to.deep.equal([1, 2, 3, 4]);
    expect(m[2].test_acc).to.equal(0.65);
    expect(m[3].max_test_acc).to.equal(0.7);
  });

  it('plot RUN RUN --out x.svg: four labelled panels and a legend naming the runs', async () => {
    const out = path.join(root, 'two.svg');
    await plotRuns([path.join(root, 'alpha'), path.join(root, 'beta')], out);
    const svg = fs.readFileSync(out, 'utf8');
    expect(svg.startsWith('<svg')).to.equal(true);
    for (const t of ['alpha', 'beta', 'run', 'train accuracy (%)', 'test accuracy (%)', 'train loss (cross-entropy)', 'test loss (cross-entropy)', 'epoch']) expect(svg, t).to.contain(`>${t}<`);
  });

  it('plot --out x.png writes a PNG through resvg', async () => {
    const r = await cli(['plot', path.join(root, 'alpha'), '--out', path.join(root, 'one.png'), '--title', 'one run']);
    expect(r.code, r.err).to.equal(0);
    const png = fs.readFileSync(path.join(root, 'one.png'));
    expect(png.subarray(0, 8).equals(PNG)).to.equal(true);
    expect(png.readUInt32BE(16)).to.be.greaterThan(800);
    expect(png.readUInt32BE(20)).to.be.greaterThan(600);
  });

  it('names runs by folder, by path where folder names repeat', () => {
    expect(runLabels(['a/x', 'b/y'])).to.deep.equal(['x', 'y']);
    expect(runLabels(['a/x', 'b/x'])).to.deep.equal([path.join('a', 'x'), path.join('b', 'x')]);
  });

  it('bad input: a missing run, a folder without metrics.csv, an unknown extension', async () => {
    fs.mkdirSync(path.join(root, 'empty'));
    for (const [args, msg] of [
      [[path.join(root, 'missing'), '--out', path.join(root, 'x.svg')], /run folder .*missing does not exist/],
      [[path.join(root, 'empty'), '--out', path.join(root, 'x.svg')], /has no metrics\.csv/],
      [[path.join(root, 'alpha'), '--out', path.join(root, 'x.jpg')], /must end in \.svg or \.png/],
    ] as const) {
      const r = await cli(['plot', ...args]);
      expect(r.code).to.equal(1);
      expect(r.err).to.match(msg);
    }
    expect(fs.existsSync(path.join(root, 'x.svg'))).to.equal(false);
  });

  it('curves with several seeds per series draw the mean and a ± std band', async () => {
    const m = readMetricsCsv(path.join(root, 'alpha'));
    const spec = curvesSpec([{ series: 'a', seed: 1, metrics: m }, { series: 'a', seed: 2, metrics: m }], { title: 't', legend: 'arm' });
    expect(JSON.stringify(spec)).to.contain('errorband');
    expect(JSON.stringify(spec)).to.contain('band: ± 1 std');
    // one legend, with the lines' colours (the bands have none)
    const svg = await renderSvg(spec);
    expect(svg.match(/>arm</g)).to.have.length(1);
    expect(svg).to.contain('>a<');
    const single = curvesSpec([{ series: 'a', metrics: m }], { title: 't', legend: 'arm' });
    expect(JSON.stringify(single)).not.to.contain('errorband');
  });

  it('sweep chart: a line per n, the baseline as a rule, rendered to SVG and PNG', async () => {
    const pts = [
      { kind: 'baseline' as const, seed: 1, test_acc: 80, max_test_acc: 81 },
      ...[0.5, 1].flatMap((sigma) => [6, 12].map((n) => ({ kind: 'lj' as const, sigma, n, epsilon: 0.1, seed: 1, test_acc: 79 + sigma + n / 12, max_test_acc: 80 + sigma }))),
    ];
    const svg = await renderSvg(sweepSpec(pts, { title: 'sweep' }));
    for (const t of ['baseline', 'n=6', 'n=12', 'σ (LJ potential well)', 'final test accuracy (%)']) expect(svg, t).to.contain(`>${t}<`);
    expect(svgToPng(svg).subarray(0, 8).equals(PNG)).to.equal(true);
  });
});
