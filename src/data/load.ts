/** Picks the reader for a run's dataset. */
import type { RunConfig } from '../config';
import { UserError } from '../runtime/session';
import type { Dataset } from './dataset';
import { loadFashionMnist } from './fashion-mnist';

export interface LoadedData {
  train: Dataset;
  test: Dataset;
  source: string;
  embedded: boolean;
}

export function loadDataset(cfg: RunConfig, dir?: string): LoadedData {
  switch (cfg.dataset) {
    case 'fashion-mnist':
      return loadFashionMnist(dir);
    default:
      throw new UserError(`dataset '${cfg.dataset}' has no reader yet (preset ${cfg.preset}); its graphs build and shape-check, but training needs Fashion-MNIST presets for now`);
  }
}
