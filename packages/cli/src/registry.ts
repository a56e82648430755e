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
import { CliError } from './errors.js';

const clients = new WeakMap<Context, RegistryClient>();

function credentialsFor(ctx: Context, registry: string): CredentialsProvider {
  const docker = dockerConfigCredentials();
  const user = ctx.options.user;
  if (!user) return docker;
  const colon = user.indexOf(':');
  if (colon < 0) throw new CliError('USAGE', '-u takes user:password');
  return chainCredentials(
    staticCredentials({ [registry]: { username: user.slice(0, colon), password: user.slice(colon + 1) } }),
    docker,
  );
}

/** The client for a registry, with this command's flags (one per command run). */
export function registryClient(ctx: Context, registry: string): RegistryClient {
  let client = clients.get(ctx);
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
    clients.set(ctx, client);
    ctx.onClose(() => client!.close());
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
