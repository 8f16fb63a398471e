/**
 * Learning-rate schedules, evaluated per step on the host and fed to the graph.
 * cosine: linear warmup over warmupEpochs, then min + (base − min)·½(1 + cos(π·t/period)), t in epochs
 * after warmup (period defaults to the remaining epochs; the paper's ViT recipe uses 200).
 * multistep: base · 0.1^(number of milestones ≤ epoch), epochs counted from 1 like the paper's "at epoch 41".
 */
export interface ScheduleConfig {
  schedule: 'cosine' | 'multistep' | 'constant';
  lr: number;
  minLr: number;
  warmupEpochs: number;
  /** Cosine period in epochs (after warmup); 0 means "the rest of the run". */
  period: number;
  milestones: number[];
  gamma: number;
}

/** lr at a fractional epoch position (epoch index + fraction of the epoch done) of a run of `epochs`. */
export function lrAt(c: ScheduleConfig, epochPos: number, epochs: number): number {
  if (c.schedule === 'constant') return c.lr;
  if (c.schedule === 'multistep') {
    const epoch1 = Math.floor(epochPos) + 1;
    const k = c.milestones.filter((m) => epoch1 >= m).length;
    return c.lr * Math.pow(c.gamma, k);
  }
  if (c.warmupEpochs > 0 && epochPos < c.warmupEpochs) return c.lr * Math.min(1, (epochPos + 1e-9) / c.warmupEpochs);
  const period = c.period > 0 ? c.period : Math.max(epochs - c.warmupEpochs, 1e-9);
  const t = Math.min(epochPos - c.warmupEpochs, period);
  return c.minLr + (c.lr - c.minLr) * 0.5 * (1 + Math.cos((Math.PI * t) / period));
}
