/** `ljtrain compare --preset NAME`: baseline vs LJ with identical seeds, initial weights and data order. */
import { Command, InvalidArgumentError } from 'commander';
import { parseList } from '../experiments/arms';
import { CompareOptions, runCompare } from '../experiments/compare';
import { addTrainOptions } from './train';
import { num } from './options';
import { addModelOptions } from './build-graph';

/** A commander parser for a comma-separated list; a bad list is a one-line error naming the option. */
export function listOption(flag: string, int: boolean) {
  return (v: string): number[] => {
    try {
      return parseList(flag, v, int);
    } catch (e) {
      throw new InvalidArgumentError((e as Error).message);
    }
  };
}

/** Options shared by compare and sweep: the experiment's folder, seeds, and cheap model overrides. */
export function addExperimentOptions(c: Command, what: string): Command {
  c.option('--preset <name>', 'preset name (ljtrain build-graph --list)')
    .option('--seeds <list>', 'seeds, e.g. 1,2,3: seed s sets both the data-order/flip seed and the initialisation seed (default: --seed, else the preset\'s seed)', listOption('--seeds', true))
    .option('--out <dir>', `output folder (default runs/${what}-<preset>)`)
    .option('--force', `discard what --out holds (another ${what}, or this one) and start over`)
    .option('--quiet', 'print only the table');
  return addModelOptions(addTrainOptions(c));
}

export function compareCommand(): Command {
  return addExperimentOptions(
    new Command('compare').description(
      'train the baseline and the LJ variant of a preset for each seed (same initial weights and data order) and write ' +
        'the paper-style table (table.md, table.csv) and curves (curves.svg, curves.png) into --out; resumable',
    ),
    'compare',
  )
    .option('--sigma <s>', 'LJ sigma (equilibrium cosine distance)', num('sigma'))
    .option('--n <n>', 'LJ exponent n', num('n'))
    .option('--epsilon <e>', 'LJ weight epsilon', num('epsilon'))
    .action(async (o: CompareOptions) => {
      const r = await runCompare(o);
      if (r.complete) {
        console.log(r.markdown);
        if (!o.quiet) console.log(`wrote ${r.files!.join(', ')}`);
      }
    });
}
