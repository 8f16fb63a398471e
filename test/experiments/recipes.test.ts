import { expect } from 'chai';
import { loadPreset } from '../../src/config';
import { RECIPES, applyTrainOverrides } from '../../src/cli/train';
import { lrAt, ScheduleConfig } from '../../src/optim/schedule';

/** The paper's recipes (appendix E.3) and what the lr schedule makes of them. */
describe('experiments/recipes (paper appendix E.3)', () => {
  const base = loadPreset('vit-tiny-fmnist');

  it('--recipe vit gives AdamW lr 1e-3, betas (0.9, 0.999), wd 5e-5, 5 warmup epochs, cosine to 1e-5 with period 200, batch 64', () => {
    const t = applyTrainOverrides(base, { recipe: 'vit' }).train;
    expect(t).to.include({ optimizer: 'adamw', lr: 1e-3, beta1: 0.9, beta2: 0.999, weightDecay: 5e-5, schedule: 'cosine', warmupEpochs: 5, period: 200, minLr: 1e-5, batch: 64 });
  });

  it('--recipe resnet gives SGD lr 0.1, momentum 0.9, wd 1e-4, ×0.1 at epochs 41, 61, 81, batch 64', () => {
    const t = applyTrainOverrides(base, { recipe: 'resnet' }).train;
    expect(t).to.include({ optimizer: 'sgd', lr: 0.1, momentum: 0.9, weightDecay: 1e-4, schedule: 'multistep', gamma: 0.1, batch: 64 });
    expect(t.milestones).to.deep.equal([41, 61, 81]);
  });

  it('explicit options win over the recipe, and the preset is not changed', () => {
    const t = applyTrainOverrides(base, { recipe: 'vit', lr: 5e-4, batch: 32 }).train;
    expect(t.lr).to.equal(5e-4);
    expect(t.batch).to.equal(32);
    expect(t.period).to.equal(200);
    expect(base.train.warmupEpochs).to.equal(0);
    expect(RECIPES.vit.lr).to.equal(1e-3);
  });

  describe('lrAt (epoch positions = epochs elapsed, as the trainer feeds them)', () => {
    const vit = applyTrainOverrides(base, { recipe: 'vit' }).train as ScheduleConfig;
    const resnet = applyTrainOverrides(base, { recipe: 'resnet' }).train as ScheduleConfig;
    const close = (a: number, b: number) => expect(a).to.be.closeTo(b, 1e-12 + 1e-9 * Math.abs(b));

    it('vit: warmup rises linearly from 0 to 1e-3 over the first 5 epochs', () => {
      expect(lrAt(vit, 0, 300)).to.be.below(1e-9);
      close(lrAt(vit, 1, 300), 2e-4);
      close(lrAt(vit, 2.5, 300), 5e-4);
      close(lrAt(vit, 4, 300), 8e-4);
      close(lrAt(vit, 5, 300), 1e-3);
      for (let e = 0.25; e < 5; e += 0.25) expect(lrAt(vit, e + 0.25, 300)).to.be.above(lrAt(vit, e, 300));
    });

    it('vit: cosine from 1e-3 after warmup, midway (5.05e-4) at epoch 105, 1e-5 at epoch 205', () => {
      close(lrAt(vit, 105, 300), 1e-5 + (1e-3 - 1e-5) / 2);
      close(lrAt(vit, 105, 300), 5.05e-4);
      close(lrAt(vit, 205, 300), 1e-5);
      close(lrAt(vit, 55, 300), 1e-5 + (1e-3 - 1e-5) * 0.5 * (1 + Math.cos(Math.PI / 4)));
      for (let e = 5; e < 205; e += 10) expect(lrAt(vit, e + 10, 300)).to.be.below(lrAt(vit, e, 300));
      // the period is 200 epochs whatever the run's length
      close(lrAt(vit, 105, 110), 5.05e-4);
    });

    it('resnet: 0.1 for epochs 1..40, 0.01 for 41..60, 1e-3 for 61..80, 1e-4 from 81 (epochs counted from 1)', () => {
      // epoch k (1-based) runs over positions [k-1, k)
      const at = (k: number, frac = 0) => lrAt(resnet, k - 1 + frac, 100);
      for (const k of [1, 2, 20, 40]) close(at(k), 0.1), close(at(k, 0.99), 0.1);
      for (const k of [41, 50, 60]) close(at(k), 0.01), close(at(k, 0.5), 0.01);
      for (const k of [61, 70, 80]) close(at(k), 1e-3);
      for (const k of [81, 90, 100]) close(at(k), 1e-4);
    });
  });
});
