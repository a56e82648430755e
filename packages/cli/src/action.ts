/** The glue between commander and a command's work: its Context, built from the parsed flags. */
import type { Command } from 'commander';
import { Context, type SharedOptions } from './context.js';
import type { Io } from './io.js';
import { readPasswordFromStdin } from './registry.js';

/** Wraps a command's work: builds its Context from the parsed flags. */
export type Action<O> = (ctx: Context, args: string[], options: O & SharedOptions) => Promise<void>;

// biome-ignore lint/suspicious/noExplicitAny: commander hands options over untyped
export function action<O = Record<string, any>>(io: Io, fn: Action<O>) {
  return async (...params: unknown[]) => {
    const cmd = params[params.length - 1] as Command;
    const options = cmd.optsWithGlobals() as O & SharedOptions;
    const ctx = new Context(io, options);
    try {
      await readPasswordFromStdin(ctx);
      await fn(ctx, cmd.args, options);
    } finally {
      await ctx.close();
    }
  };
}
