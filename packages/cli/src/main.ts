/**
 * The `soci` program. `main(argv)` runs one command in-process and returns the exit code;
 * bin.ts only hands it the process arguments.
 */
import { Command, CommanderError } from 'commander';
import { registerCat } from './commands/cat.js';
import { registerConvert } from './commands/convert.js';
import { registerCreate } from './commands/create.js';
import { registerIndex } from './commands/index-cmd.js';
import { registerPull } from './commands/pull.js';
import { registerPush } from './commands/push.js';
import { registerZtoc } from './commands/ztoc.js';
import { Context, type SharedOptions } from './context.js';
import { debugDetail, describeError } from './errors.js';
import { type Io, processIo } from './io.js';

export const VERSION = '0.1.0';

/** Wraps a command's work: builds its Context from the parsed flags. */
export type Action<O> = (ctx: Context, args: string[], options: O & SharedOptions) => Promise<void>;

// biome-ignore lint/suspicious/noExplicitAny: commander hands options over untyped
export function action<O = Record<string, any>>(io: Io, fn: Action<O>) {
  return async (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    const options = cmd.optsWithGlobals() as O & SharedOptions;
    const ctx = new Context(io, options);
    try {
      await fn(ctx, cmd.args, options);
    } finally {
      await ctx.close();
    }
  };
}

export function buildProgram(io: Io): Command {
  const program = new Command('soci')
    .description('Build, push and inspect SOCI indexes; pull images lazily into containerd')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({ writeOut: (s) => io.out(s), writeErr: (s) => io.err(s) });
  registerCreate(program, io);
  registerPush(program, io);
  registerConvert(program, io);
  registerIndex(program, io);
  registerZtoc(program, io);
  registerCat(program, io);
  registerPull(program, io);
  for (const cmd of program.commands) cmd.exitOverride();
  return program;
}

/** Runs `soci <argv...>`; never throws, returns the process exit code. */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const program = buildProgram(io);
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    if (err instanceof CommanderError) {
      // Commander already printed usage problems; help and --version end with code 0.
      return err.exitCode;
    }
    io.err(`soci: ${describeError(err)}\n`);
    if (argv.includes('--debug')) io.err(`${debugDetail(err)}\n`);
    return 1;
  }
}
