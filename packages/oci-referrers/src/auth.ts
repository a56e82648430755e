import type { Challenge } from './challenge.js';
import type { Credential } from './credentials.js';

export function basicAuthorization(credential: Credential): string | undefined {
  if (credential.username === undefined || credential.password === undefined) return undefined;
  return `Basic ${Buffer.from(`${credential.username}:${credential.password}`).toString('base64')}`;
}

/** Bearer tokens by registry and scope set, dropped a little before they expire. */
export class TokenCache {
  private readonly tokens = new Map<string, { token: string; expiresAt: number }>();

  private static key(registry: string, scopes: readonly string[]): string {
    return `${registry} ${[...scopes].sort().join(' ')}`;
  }

  get(registry: string, scopes: readonly string[]): string | undefined {
    const key = TokenCache.key(registry, scopes);
    const entry = this.tokens.get(key);
    if (!entry) return undefined;
    if (Date.now() >= entry.expiresAt) {
      this.tokens.delete(key);
      return undefined;
    }
    return entry.token;
  }

  set(registry: string, scopes: readonly string[], token: string, expiresInSeconds: number): void {
    // Renew 10% (at most 30 s) early so a token does not expire in flight.
    const lifetimeMs = expiresInSeconds * 1000;
    const expiresAt = Date.now() + lifetimeMs - Math.min(30_000, lifetimeMs / 10);
    this.tokens.set(TokenCache.key(registry, scopes), { token, expiresAt });
  }

  delete(registry: string, scopes: readonly string[]): void {
    this.tokens.delete(TokenCache.key(registry, scopes));
  }
}

/** The token endpoint's request for a challenge: GET with basic auth, or the OAuth2 refresh-token POST. */
export function tokenRequest(
  challenge: Challenge,
  scopes: readonly string[],
  credential: Credential | undefined,
): { url: URL; method: 'GET' | 'POST'; headers: Record<string, string>; body?: string } {
  const url = new URL(challenge.params.realm!);
  const service = challenge.params.service;
  const allScopes = mergeScopes([...scopes, ...(challenge.params.scope?.split(' ') ?? [])]);
  if (credential?.identityToken) {
    const form = new URLSearchParams({
      grant_type: 'refresh_token',
      refresh_token: credential.identityToken,
      client_id: 'soci-ts',
    });
    if (service) form.set('service', service);
    if (allScopes.length) form.set('scope', allScopes.join(' '));
    return {
      url,
      method: 'POST',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
      body: form.toString(),
    };
  }
  if (service) url.searchParams.set('service', service);
  for (const scope of allScopes) url.searchParams.append('scope', scope);
  const headers: Record<string, string> = {};
  const basic = credential && basicAuthorization(credential);
  if (basic) headers.authorization = basic;
  return { url, method: 'GET', headers };
}

/**
 * Unions scopes per resource, keeping first-seen order: `repository:a:pull` + `repository:a:push` ->
 * `repository:a:pull,push`.
 */
export function mergeScopes(scopes: readonly string[]): string[] {
  const byResource = new Map<string, Set<string>>();
  for (const scope of scopes) {
    if (!scope) continue;
    const i = scope.lastIndexOf(':');
    const resource = i < 0 ? scope : scope.slice(0, i);
    const actions = byResource.get(resource) ?? new Set<string>();
    for (const action of i < 0 ? [] : scope.slice(i + 1).split(',')) if (action) actions.add(action);
    byResource.set(resource, actions);
  }
  return [...byResource].map(([resource, actions]) =>
    actions.size ? `${resource}:${[...actions].join(',')}` : resource,
  );
}

/** Reads `token` (or OAuth2 `access_token`) and `expires_in` (default 60 s) from a token answer. */
export function parseTokenResponse(text: string): { token: string; expiresIn: number } | undefined {
  try {
    const body = JSON.parse(text) as { token?: unknown; access_token?: unknown; expires_in?: unknown };
    const token = typeof body.token === 'string' ? body.token : body.access_token;
    if (typeof token !== 'string' || token === '') return undefined;
    const expiresIn = typeof body.expires_in === 'number' && body.expires_in > 0 ? body.expires_in : 60;
    return { token, expiresIn };
  } catch {
    return undefined;
  }
}
