/** Registry access from the shared flags: hosts (--plain-http, --insecure) and credentials (-u, docker config). */
import {
  type CredentialsProvider,
  chainCredentials,
  dockerConfigCredentials,
  parseReference,
  type Reference,
  RegistryClient,
  type Repository,
  staticCredentials,
} from '@soci-ts/oci-referrers';
import { RegistrySource } from '@soci-ts/soci-index';
import type { Context } from './context.js';
import { CliError, usageError } from './errors.js';

/** One client per registry a command talks to (convert reads one and pushes to another). */
const clients = new WeakMap<Context, Map<string, RegistryClient>>();

function credentialsFor(ctx: Context, registry: string): CredentialsProvider {
  const docker = dockerConfigCredentials();
  const login = userAndPassword(ctx, registry);
  if (!login) return docker;
  return chainCredentials(staticCredentials({ [registry]: login }), docker);
}

/**
 * The registry's user:password (-u, or convert's --src-user), or -u user with the password from
 * --password-stdin (read by the action).
 */
function userAndPassword(ctx: Context, registry: string): { username: string; password: string } | undefined {
  const user = ctx.userFor(registry);
  if (!user) return undefined;
  if (ctx.password !== undefined && user === ctx.options.user)
    return { username: user, password: ctx.password };
  const colon = user.indexOf(':');
  if (colon < 0) {
    throw usageError(
      '-u takes user:password, or -u user with --password-stdin (the password on standard input)',
    );
  }
  return { username: user.slice(0, colon), password: user.slice(colon + 1) };
}

/**
 * --password-stdin: the password is all of standard input but its line ending, as `docker login
 * --password-stdin` takes it. Read before the command starts, so a bad combination fails first.
 */
export async function readPasswordFromStdin(ctx: Context): Promise<void> {
  if (!ctx.options.passwordStdin) return;
  const user = ctx.options.user;
  if (!user) throw usageError('--password-stdin needs -u <user>');
  if (user.includes(':')) {
    throw usageError('-u holds a password already; with --password-stdin give -u <user> alone');
  }
  const password = (await ctx.io.readStdin()).replace(/\r?\n$/, '');
  if (!password) throw usageError('--password-stdin read an empty password from standard input');
  ctx.password = password;
}

/**
 * The client for a registry, with this command's flags: --plain-http, --insecure and -u apply to
 * every registry the command names (a registry that asks for no credentials gets none).
 */
export function registryClient(ctx: Context, registry: string): RegistryClient {
  let byRegistry = clients.get(ctx);
  if (!byRegistry) {
    byRegistry = new Map();
    clients.set(ctx, byRegistry);
  }
  let client = byRegistry.get(registry);
  if (!client) {
    client = new RegistryClient({
      hosts: {
        [registry]: {
          ...(ctx.options.plainHttp ? { plainHttp: true } : {}),
          ...(ctx.options.insecure ? { insecureSkipVerify: true } : {}),
        },
      },
      credentials: credentialsFor(ctx, registry),
      // One quick retry: a CLI should fail fast and say why rather than back off for long.
      retry: { maxRetries: 1, baseDelayMs: 100 },
    });
    byRegistry.set(registry, client);
    const created = client;
    ctx.onClose(() => created.close());
  }
  return client;
}

export function openRepository(ctx: Context, ref: string): { ref: Reference; repository: Repository } {
  const parsed = parseReference(ref);
  return { ref: parsed, repository: registryClient(ctx, parsed.registry).repository(parsed) };
}

export async function openRegistrySource(ctx: Context, ref: string): Promise<RegistrySource> {
  const { ref: parsed, repository } = openRepository(ctx, ref);
  return new RegistrySource(repository, parsed);
}
