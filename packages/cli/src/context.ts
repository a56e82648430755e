/**
 * What every command needs, built from the shared flags: the local store, image sources
 * by reference, registry access, progress and output helpers.
 */
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { LocalStore } from '@soci-ts/soci-index';
import type { Command } from 'commander';
import type { Io } from './io.js';
import { Progress } from './progress.js';

export interface SharedOptions {
  root: string;
  plainHttp?: boolean;
  insecure?: boolean;
  user?: string;
  passwordStdin?: boolean;
  debug?: boolean;
  quiet?: boolean;
  json?: boolean;
  containerdAddress?: string;
  namespace: string;
}

export function defaultRoot(): string {
  return process.env.SOCI_ROOT ?? join(homedir(), '.soci');
}

/** Adds the registry flags: --plain-http, --insecure, -u and --password-stdin (docker config.json otherwise). */
export function withRegistryOptions(cmd: Command): Command {
  return cmd
    .option('--plain-http', 'talk HTTP, not HTTPS, to the registry')
    .option('--insecure', 'accept any TLS certificate from the registry')
    .option(
      '-u, --user <user[:password]>',
      'registry credentials (default: docker config.json); the password may come from --password-stdin',
    )
    .option('--password-stdin', 'read the password for -u <user> from standard input');
}

/** Adds -q/--quiet and --debug. */
export function withOutputOptions(cmd: Command): Command {
  return cmd
    .option('-q, --quiet', 'no progress output')
    .option('--debug', 'print stack traces and details on errors');
}

/** Adds --root and the output flags: for commands that only read or change the local store. */
export function withStoreOptions(cmd: Command): Command {
  return withOutputOptions(
    cmd.option('--root <dir>', 'local store (an OCI layout) for indexes and zTOCs', defaultRoot()),
  );
}

/** Adds the flags of commands that read images: the store's, the registry's and containerd's. */
export function withSharedOptions(cmd: Command): Command {
  return withStoreOptions(
    withRegistryOptions(cmd)
      .option(
        '--containerd-address <socket>',
        "read images from containerd's content store instead of the registry",
      )
      .option('-n, --namespace <ns>', 'containerd namespace (with --containerd-address)', 'default'),
  );
}

export class Context {
  private storePromise?: Promise<LocalStore>;
  /** The password read by --password-stdin, before the command runs. */
  password: string | undefined;
  /** Registries whose credentials are not -u's (convert's source: --src-user). */
  private readonly users = new Map<string, string | undefined>();
  private readonly closers: (() => Promise<void>)[] = [];

  constructor(
    readonly io: Io,
    readonly options: SharedOptions,
    /** Aborted by Ctrl-C: every registry, store and containerd call of the command takes it. */
    readonly signal: AbortSignal = new AbortController().signal,
  ) {}

  /** Registers cleanup (connection pools) run when the command ends. */
  onClose(fn: () => Promise<void>): void {
    this.closers.push(fn);
  }

  async close(): Promise<void> {
    await Promise.allSettled(this.closers.splice(0).map((fn) => fn()));
  }

  /** The `user[:password]` for a registry: -u, unless the command gave that registry its own. */
  userFor(registry: string): string | undefined {
    return this.users.has(registry) ? this.users.get(registry) : this.options.user;
  }

  /** Gives a registry its own credentials (undefined: docker config.json only), instead of -u. */
  setUser(registry: string, user: string | undefined): void {
    this.users.set(registry, user);
  }

  store(): Promise<LocalStore> {
    this.storePromise ??= LocalStore.open(resolve(this.options.root));
    return this.storePromise;
  }

  /** Progress shows only on a terminal and never with --quiet or --json. */
  progress(): Progress {
    return new Progress(this.io, this.io.isTTY && !this.options.quiet && !this.options.json);
  }

  /** Prints a value as JSON (with --json) or as text lines. */
  print(value: unknown, text: () => string): void {
    if (this.options.json) this.io.out(`${JSON.stringify(value, null, 2)}\n`);
    else {
      const t = text();
      if (t) this.io.out(t.endsWith('\n') ? t : `${t}\n`);
    }
  }

  /** A status line on stderr (not with --quiet or --json). */
  note(text: string): void {
    if (!this.options.quiet && !this.options.json) this.io.err(`${text}\n`);
  }
}
