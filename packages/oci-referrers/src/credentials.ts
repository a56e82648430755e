import { execFile } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { RegistryError } from './errors.js';
import { DOCKER_HUB } from './reference.js';

/** A login for one registry: username + password, or an OAuth2 refresh (identity) token. */
export interface Credential {
  username?: string;
  password?: string;
  /** Refresh token (docker config `identitytoken`, or a helper answering Username `<token>`). */
  identityToken?: string;
}

/**
 * Finds the credential for a registry host (`docker.io`, `ghcr.io`, `127.0.0.1:5000`), if any. A client
 * caches the answer and asks again when the registry refuses it (401), so a provider that returns the
 * current secret makes rotation work without a restart.
 */
export type CredentialsProvider = (registry: string) => Promise<Credential | undefined>;

/** Credentials from a fixed map keyed by registry host. */
export function staticCredentials(map: Record<string, Credential>): CredentialsProvider {
  return async (registry) => map[registry];
}

/** The first provider that knows the registry wins. */
export function chainCredentials(...providers: CredentialsProvider[]): CredentialsProvider {
  return async (registry) => {
    for (const provider of providers) {
      const found = await provider(registry);
      if (found) return found;
    }
    return undefined;
  };
}

interface DockerConfigFile {
  auths?: Record<string, { auth?: string; username?: string; password?: string; identitytoken?: string }>;
  credsStore?: string;
  credHelpers?: Record<string, string>;
}

/**
 * Credentials from a Docker config.json (default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`):
 * `credHelpers[host]` first, then an `auths` entry with a base64 `auth` (or username/password/identitytoken),
 * then `credsStore`. Helpers run as `docker-credential-<name> get` (found on PATH). A missing file means
 * no credentials.
 */
export function dockerConfigCredentials(
  options: { path?: string; helperTimeoutMs?: number } = {},
): CredentialsProvider {
  const path = options.path ?? join(process.env.DOCKER_CONFIG ?? join(homedir(), '.docker'), 'config.json');
  // Read on every call, not once: the client asks again only after a registry refused what it sent, and
  // then a `docker login` made since must count. The client caches the answers in between.
  const load = (): Promise<DockerConfigFile> =>
    readFile(path, 'utf8').then(
      (text) => {
        try {
          return JSON.parse(text) as DockerConfigFile;
        } catch {
          throw new RegistryError('REGISTRY_CREDENTIALS', `${path} is not valid JSON; fix or remove it`);
        }
      },
      (e: NodeJS.ErrnoException) => {
        if (e.code === 'ENOENT') return {};
        throw new RegistryError('REGISTRY_CREDENTIALS', `cannot read ${path}: ${e.code ?? e.message}`);
      },
    );
  return async (registry) => {
    const file = await load();
    const helper = file.credHelpers?.[registry];
    if (helper) return runCredentialHelper(helper, registry, options.helperTimeoutMs);
    const entry = findAuthEntry(file.auths ?? {}, registry);
    if (entry) {
      const fromEntry = credentialFromAuthEntry(entry, registry, path);
      if (fromEntry) return fromEntry;
    }
    if (file.credsStore) return runCredentialHelper(file.credsStore, registry, options.helperTimeoutMs);
    return undefined;
  };
}

/** `https://index.docker.io/v1/` -> `docker.io`; `https://host:5000/v2/` -> `host:5000`. */
function normalizeAuthKey(key: string): string {
  const host = key.replace(/^[a-z]+:\/\//i, '').replace(/\/.*$/, '');
  return host === 'index.docker.io' || host === 'registry-1.docker.io' ? DOCKER_HUB : host;
}

function findAuthEntry(auths: NonNullable<DockerConfigFile['auths']>, registry: string) {
  for (const [key, value] of Object.entries(auths)) if (normalizeAuthKey(key) === registry) return value;
  return undefined;
}

function credentialFromAuthEntry(
  entry: NonNullable<DockerConfigFile['auths']>[string],
  registry: string,
  path: string,
): Credential | undefined {
  if (entry.identitytoken) return { identityToken: entry.identitytoken };
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, 'base64').toString('utf8');
    const colon = decoded.indexOf(':');
    if (colon < 0) {
      throw new RegistryError(
        'REGISTRY_CREDENTIALS',
        `${path}: the "auth" of ${registry} is not base64 of user:password`,
      );
    }
    return { username: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
  }
  if (entry.username && entry.password) return { username: entry.username, password: entry.password };
  return undefined;
}

/** The server URL a credential helper is asked for: Docker Hub's historical one, else the host. */
function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? 'https://index.docker.io/v1/' : registry;
}

/** Runs `docker-credential-<helper> get`. Its output is never put in messages (it holds the secret). */
function runCredentialHelper(
  helper: string,
  registry: string,
  timeoutMs = 10_000,
): Promise<Credential | undefined> {
  const program = `docker-credential-${helper}`;
  return new Promise((resolve, reject) => {
    const child = execFile(
      program,
      ['get'],
      { timeout: timeoutMs, maxBuffer: 1 << 20 },
      (error, stdout, stderr) => {
        if (error) {
          if (/credentials not found/i.test(`${stdout}${stderr}`)) return resolve(undefined);
          const why = (error as NodeJS.ErrnoException).code === 'ENOENT' ? 'is not on PATH' : 'failed';
          return reject(
            new RegistryError(
              'REGISTRY_CREDENTIALS',
              `credential helper ${program} ${why} for ${registry}; check your docker config`,
            ),
          );
        }
        try {
          const parsed = JSON.parse(stdout) as { Username?: string; Secret?: string };
          if (!parsed.Secret) return resolve(undefined);
          resolve(
            parsed.Username === '<token>'
              ? { identityToken: parsed.Secret }
              : { username: parsed.Username ?? '', password: parsed.Secret },
          );
        } catch {
          reject(
            new RegistryError(
              'REGISTRY_CREDENTIALS',
              `credential helper ${program} printed no JSON for ${registry}`,
            ),
          );
        }
      },
    );
    child.stdin?.end(helperServerUrl(registry));
  });
}
