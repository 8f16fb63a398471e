#!/usr/bin/env node
/**
 * ljtrain: a thin entry that parses and dispatches to one module per command. Errors the user can
 * fix become one line and exit code 1; set LJTRAIN_DEBUG=1 for stack traces.
 */
import { Command, CommanderError } from 'commander';
import { buildGraphCommand } from './build-graph';
import { evalCommand, exportCommand } from './eval-export';
import { trainCommand } from './train';
import { compareCommand } from './compare';
import { plotCommand } from './plot';
import { sweepCommand } from './sweep';
import { TOOL_VERSION } from '../artifacts/manifest';

export function program(): Command {
  const p = new Command('ljtrain')
    .description('train vision models with the Lennard-Jones potential loss on ONNX Runtime')
    .version(TOOL_VERSION)
    .exitOverride()
    .configureOutput({ outputError: (s, write) => write(s) });
  for (const c of [buildGraphCommand(), trainCommand(), evalCommand(), exportCommand(), compareCommand(), sweepCommand(), plotCommand()]) p.addCommand(c.exitOverride());
  return p;
}

export async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv, { from: 'user' });
    return 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 1; // commander already printed it
    const err = e as Error;
    if (process.env.LJTRAIN_DEBUG) console.error(err.stack);
    const known = ['UserError', 'GraphBuildError', 'DataError', 'CheckpointError', 'OrtTrainingError', 'AtomicWriteError'].includes(err?.name);
    console.error(`ljtrain: ${known ? '' : 'error: '}${err?.message ?? String(e)}`);
    return 1;
  }
}

if (require.main === module) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
