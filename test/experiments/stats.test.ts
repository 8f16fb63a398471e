import { expect } from 'chai';
import { compareArms, mean, pairedT, std, tCritical95 } from '../../src/experiments/stats';
import { csvTable, deltaT, fmtLj, fmtBase, fmtDt, fmtVerdict, mdTable, runNumbers, summarizePair } from '../../src/experiments/summary';
import type { EpochMetrics } from '../../src/train/metrics';

const epoch = (e: number, trainAcc: number, testAcc: number, sps: number): EpochMetrics => ({
  epoch: e, lr: 1e-3, train_ce: 1, train_lj: 0, train_acc: trainAcc, test_loss: 1, test_acc: testAcc, max_test_acc: testAcc, epoch_seconds: 1, samples_per_s: sps,
});

describe('experiments/stats and summary', () => {
  it('mean, sample std, paired t (hand-computed)', () => {
    expect(mean([1, 2, 3, 4])).to.equal(2.5);
    expect(std([2, 4, 4, 4, 5, 5, 7, 9])).to.be.closeTo(Math.sqrt(32 / 7), 1e-12);
    expect(std([3])).to.be.NaN;
    // d = [1, 2, 3]: mean 2, sd 1, t = 2 / (1 / sqrt 3)
    expect(pairedT([10, 10, 10], [11, 12, 13])).to.be.closeTo(2 * Math.sqrt(3), 1e-12);
    expect(pairedT([1, 2], [2, 3])).to.equal(Infinity);
    expect(tCritical95(2)).to.equal(4.303);
  });

  it('compareArms: the difference exceeds the spread when |diff| > sqrt(std_a² + std_b²)', () => {
    const d = compareArms([80, 81, 82], [82, 83, 84]);
    expect(d.diff).to.be.closeTo(2, 1e-12);
    expect(d.spread).to.be.closeTo(Math.SQRT2, 1e-12);
    expect(d.exceedsSpread).to.equal(true);
    expect(compareArms([80, 82, 84], [81, 83, 85]).exceedsSpread).to.equal(false);
    expect(compareArms([80], [81]).exceedsSpread).to.equal(null);
  });

  it("formats cells in the paper's form", () => {
    const one = compareArms([85.1], [85.52]);
    expect(fmtBase(one)).to.equal('85.10');
    expect(fmtLj(one)).to.equal('85.52 (+0.42)');
    expect(fmtLj(compareArms([85.1], [84.9]))).to.equal('84.90 (-0.20)');
    const three = compareArms([80, 81, 82], [82, 83, 84]);
    expect(fmtLj(three)).to.equal('83.00 ± 1.00 (+2.00)');
    expect(fmtVerdict(three)).to.match(/^yes \(2\.00 > 1\.41; t = \+?inf\)$/);
    expect(fmtVerdict(one)).to.equal('n/a (one seed)');
  });

  it('run numbers and Δt from samples/s', () => {
    // the fastest epoch counts (1000 and 800 samples/s); slower epochs were disturbed by other load
    const b = runNumbers([epoch(1, 0.5, 0.6, 600), epoch(2, 0.7, 0.65, 1000)]);
    const l = runNumbers([epoch(1, 0.5, 0.7, 800), epoch(2, 0.72, 0.66, 500)]);
    expect(b).to.include({ epochs: 2 });
    expect(b.train_acc).to.be.closeTo(70, 1e-9);
    expect(l.max_test_acc).to.be.closeTo(70, 1e-9);
    expect(l.test_acc).to.be.closeTo(66, 1e-9);
    expect(deltaT(b, l)).to.be.closeTo(25, 1e-9); // 1/800 over 1/1000
    const s = summarizePair([b], [l]);
    expect(fmtDt(s.dt)).to.equal('25.00%');
    expect(fmtLj(s.metrics.test_acc)).to.equal('66.00 (+1.00)');
  });

  it('writes Markdown and CSV tables', () => {
    expect(mdTable(['a', 'b'], [['1', 'x|y']])).to.equal('| a | b |\n|---|---|\n| 1 | x\\|y |');
    expect(csvTable(['a', 'b', 'c'], [[1.5, 'x,y', null], [NaN, true, 'q"']])).to.equal('a,b,c\n1.5,"x,y",\n,true,"q"""\n');
  });
});
