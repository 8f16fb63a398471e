/** `ljtrain sweep --preset NAME --sigma 0.5,1.0 --n 6,12`: a grid of LJ settings against one baseline. */
import { Command } from 'commander';
import { runSweep, SweepOptions } from '../experiments/sweep';
import { addExperimentOptions, listOption } from './compare';

export function sweepCommand(): Command {
  return addExperimentOptions(
    new Command('sweep').description(
      'train one baseline and one LJ run per setting of the σ × n × ε grid, for each seed, and write a table ' +
        '(table.md, table.csv) and a plot of test accuracy against the settings (sweep.svg, sweep.png) into --out; resumable',
    ),
    'sweep',
  )
    .option('--sigma <list>', "LJ sigmas, e.g. 0.5,1.0 (default: the preset's)", listOption('--sigma', false))
    .option('--n <list>', "LJ exponents, e.g. 6,12 (default: the preset's)", listOption('--n', false))
    .option('--epsilon <list>', "LJ weights, e.g. 0.1,0.5 (default: the preset's)", listOption('--epsilon', false))
    .action(async (o: Omit<SweepOptions, 'sigmas' | 'ns' | 'epsilons'> & { sigma?: number[]; n?: number[]; epsilon?: number[] }) => {
      const { sigma, n, epsilon, ...rest } = o;
      const r = await runSweep({ ...rest, sigmas: sigma, ns: n, epsilons: epsilon });
      if (r.complete) {
        console.log(r.markdown);
        if (!o.quiet) console.log(`wrote ${r.files!.join(', ')}`);
      }
    });
}
