/**
 * The `soci` program. `main(argv)` runs one command in-process and returns the exit code;
 * bin.ts only hands it the process arguments.
 */
import { createRequire } from 'node:module';
import { Command, CommanderError } from 'commander';
import { registerCat } from './commands/cat.js';
import { registerConvert } from './commands/convert.js';
import { registerCreate } from './commands/create.js';
import { registerIndex } from './commands/index-cmd.js';
import { registerPull } from './commands/pull.js';
import { registerPush } from './commands/push.js';
import { registerZtoc } from './commands/ztoc.js';
import { debugDetail, describeError, errorCodeOf, exitCodeOf, usageError } from './errors.js';
import { type Io, processIo } from './io.js';

/** The package's version: package.json sits one level above both src/ and dist/. */
export const VERSION: string = createRequire(import.meta.url)('../package.json').version;

/**
 * `onUsageError`: where commander's own messages about the command line go (unknown options,
 * missing arguments); by default, standard error.
 */
export function buildProgram(io: Io, onUsageError: (message: string) => void = (m) => io.err(m)): Command {
  const program = new Command('soci')
    .description('Build, push and inspect SOCI indexes; pull images lazily into containerd')
    .version(VERSION)
    .showHelpAfterError(false)
    .exitOverride()
    .configureOutput({
      writeOut: (s) => io.out(s),
      writeErr: (s) => io.err(s),
      outputError: (s) => onUsageError(s),
    });
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

/**
 * Runs `soci <argv...>`; never throws, returns the process exit code: 0, 1 when the command
 * failed, 2 for a usage error (as the daemon), 130 when Ctrl-C stopped it (as a shell says). With --json a failure is one JSON object on
 * standard error, `{"error": {"code", "message"}}`, so that a script reads it the same way as
 * the output.
 */
export async function main(argv: readonly string[], io: Io = processIo()): Promise<number> {
  const json = argv.includes('--json');
  let usage: string | undefined;
  const program = buildProgram(io, (message) => {
    usage = message.trim().replace(/^error: /, '');
    if (!json) io.err(message);
  });
  try {
    await program.parseAsync([...argv], { from: 'user' });
    return 0;
  } catch (err) {
    let failure = err;
    if (err instanceof CommanderError) {
      // Help and --version end with code 0; everything else commander stops on is a usage error.
      if (err.exitCode === 0) return 0;
      // A command group without its subcommand prints its help (to standard error) and stops.
      const what =
        err.code === 'commander.help' ? 'a subcommand is missing (see the help above)' : err.message;
      failure = usageError(usage ?? what.replace(/^error: /, ''));
      if (!json) return exitCodeOf(failure);
    }
    const message = describeError(failure);
    if (json) {
      io.err(`${JSON.stringify({ error: { code: errorCodeOf(failure), message } })}\n`);
    } else {
      io.err(`soci: ${message}\n`);
    }
    if (argv.includes('--debug')) io.err(`${debugDetail(failure)}\n`);
    return exitCodeOf(failure);
  }
}
