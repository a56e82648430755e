/** The glue between commander and a command's work: its Context, built from the parsed flags. */
import type { Command } from 'commander';
import { Context, type SharedOptions } from './context.js';
import { CliError, isAborted } from './errors.js';
import type { Io } from './io.js';
import { readPasswordFromStdin } from './registry.js';

/**
 * Wraps a command's work: builds its Context from the parsed flags, with a signal that Ctrl-C
 * (SIGINT) aborts so requests in flight stop; a second Ctrl-C kills the process as usual.
 */
export type Action<O> = (ctx: Context, args: string[], options: O & SharedOptions) => Promise<void>;

// biome-ignore lint/suspicious/noExplicitAny: commander hands options over untyped
export function action<O = Record<string, any>>(io: Io, fn: Action<O>) {
  return async (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    const options = cmd.optsWithGlobals() as O & SharedOptions;
    const controller = new AbortController();
    const onInterrupt = () => controller.abort(new CliError('CLI_ABORTED', 'interrupted (Ctrl-C)'));
    process.once('SIGINT', onInterrupt);
    const ctx = new Context(io, options, controller.signal);
    try {
      await readPasswordFromStdin(ctx);
      await fn(ctx, cmd.args, options);
    } catch (err) {
      if (!controller.signal.aborted || isAborted(err)) throw err;
      throw new CliError('CLI_ABORTED', `${cmd.name()} interrupted (Ctrl-C)`, { cause: err });
    } finally {
      process.removeListener('SIGINT', onInterrupt);
      await ctx.close();
    }
  };
}
