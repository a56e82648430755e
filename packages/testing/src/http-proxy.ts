import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, request, type Server, type ServerResponse } from 'node:http';
import type { TestRegistry } from './registry.js';

/** Forwards one request to `upstream` (Host kept, so registry Location headers name the proxy). */
function forward(
  req: IncomingMessage,
  res: ServerResponse,
  upstream: string,
  edit: { dropHeaders?: string[]; onResponse?: (up: IncomingMessage) => boolean } = {},
): void {
  const headers = { ...req.headers };
  for (const h of edit.dropHeaders ?? []) delete headers[h];
  const target = new URL(upstream);
  const up = request(
    { host: target.hostname, port: target.port, method: req.method, path: req.url, headers },
    (upRes) => {
      if (edit.onResponse?.(upRes)) return;
      res.writeHead(upRes.statusCode ?? 502, upRes.headers);
      upRes.pipe(res);
    },
  );
  up.on('error', () => res.destroy());
  req.pipe(up);
}

/** Listens on a free loopback port; `stop` closes open connections too. */
export async function listen(server: Server): Promise<{ host: string; url: string; stop(): Promise<void> }> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return {
    host,
    url: `http://${host}`,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

/** A bearer-token front for a registry, as Docker Hub and most cloud registries work. */
export interface TokenAuthProxy extends TestRegistry {
  /** Every token request: the scopes asked for and the basic-auth user (undefined when anonymous). */
  tokenRequests: { scopes: string[]; user?: string; service?: string }[];
}

/**
 * Starts a proxy in front of `upstream` that demands `Authorization: Bearer <token>` with the right
 * `repository:<name>:<pull|push>` scope, answers 401 + `WWW-Authenticate: Bearer realm=...,service=...,scope=...`
 * otherwise, and serves tokens at `/token` (basic auth checked against `credentials` when given).
 */
export async function startTokenAuthProxy(
  upstream: TestRegistry,
  options: { credentials?: { user: string; password: string }; service?: string } = {},
): Promise<TokenAuthProxy> {
  const service = options.service ?? 'soci-test-registry';
  const tokens = new Map<string, Set<string>>();
  const tokenRequests: TokenAuthProxy['tokenRequests'] = [];
  let realm = '';
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://proxy');
    if (url.pathname === '/token') {
      const user = basicUser(req.headers.authorization);
      const scopes = url.searchParams.getAll('scope').flatMap((s) => s.split(' '));
      tokenRequests.push({ scopes, user: user?.user, service: url.searchParams.get('service') ?? undefined });
      const creds = options.credentials;
      if (creds && (user?.user !== creds.user || user.password !== creds.password)) {
        sendError(res, 401, 'UNAUTHORIZED', 'bad credentials for the token server');
        return;
      }
      const token = randomBytes(18).toString('base64url');
      tokens.set(token, new Set(scopes.flatMap(expandScope)));
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    const needed = neededScope(req.method ?? 'GET', url.pathname);
    const bearer = /^Bearer (.+)$/i.exec(req.headers.authorization ?? '')?.[1];
    const granted = bearer ? tokens.get(bearer) : undefined;
    if (!granted || (needed && !granted.has(needed))) {
      const scope = needed ? `,scope="${needed}"` : '';
      res.setHeader('www-authenticate', `Bearer realm="${realm}",service="${service}"${scope}`);
      sendError(res, 401, 'UNAUTHORIZED', 'authentication required');
      return;
    }
    forward(req, res, upstream.url, { dropHeaders: ['authorization'] });
  });
  const listening = await listen(server);
  realm = `${listening.url}/token`;
  return { ...listening, tokenRequests };
}

/** `repository:a/b:pull,push` -> [`repository:a/b:pull`, `repository:a/b:push`] */
function expandScope(scope: string): string[] {
  const i = scope.lastIndexOf(':');
  if (i < 0) return [scope];
  return scope
    .slice(i + 1)
    .split(',')
    .map((action) => `${scope.slice(0, i)}:${action}`);
}

function neededScope(method: string, path: string): string | undefined {
  const m = /^\/v2\/(.+?)\/(manifests|blobs|tags|referrers)\//.exec(path);
  if (!m) return undefined;
  return `repository:${m[1]}:${method === 'GET' || method === 'HEAD' ? 'pull' : 'push'}`;
}

function basicUser(header: string | undefined): { user: string; password: string } | undefined {
  const m = /^Basic (.+)$/i.exec(header ?? '');
  if (!m) return undefined;
  const decoded = Buffer.from(m[1]!, 'base64').toString();
  const i = decoded.indexOf(':');
  return { user: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

function sendError(res: ServerResponse, status: number, code: string, message: string): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}

/**
 * One injected failure, used once, by the next request that `match`es (default: any request).
 * `corrupt-body` forwards the response with one byte of its body flipped: the byte at `offset`,
 * default the middle of the body (by Content-Length), as a bad disk or proxy would serve it.
 */
export type Fault = { match?: (method: string, path: string) => boolean } & (
  | { kind: 'status'; status: number; retryAfter?: string }
  | { kind: 'reset' }
  | { kind: 'stall-headers' }
  | { kind: 'stall-body'; afterBytes: number }
  | { kind: 'ignore-range' }
  | { kind: 'corrupt-body'; offset?: number }
);

/** A proxy that forwards to a registry and injects queued faults. */
export interface FaultProxy extends TestRegistry {
  inject(...faults: Fault[]): void;
  /** Requests seen (method, path with query, the Range header), in order. */
  requests: { method: string; path: string; range?: string }[];
}

/**
 * Starts a fault-injecting proxy in front of `upstream`: status answers (503/429 with Retry-After),
 * connection resets, responses that never send headers, bodies that stall after N bytes,
 * servers that ignore Range (answer 200 with the whole blob) and bodies with a flipped byte.
 */
export async function startFaultProxy(upstream: { url: string }): Promise<FaultProxy> {
  const queue: Fault[] = [];
  const requests: FaultProxy['requests'] = [];
  const server = createServer((req, res) => {
    const method = req.method ?? 'GET';
    const path = req.url ?? '/';
    requests.push({ method, path, range: req.headers.range });
    const i = queue.findIndex((f) => !f.match || f.match(method, path));
    const fault = i >= 0 ? queue.splice(i, 1)[0] : undefined;
    switch (fault?.kind) {
      case undefined:
        return forward(req, res, upstream.url);
      case 'status':
        if (fault.retryAfter !== undefined) res.setHeader('retry-after', fault.retryAfter);
        return sendError(
          res,
          fault.status,
          fault.status === 429 ? 'TOOMANYREQUESTS' : 'UNAVAILABLE',
          'injected',
        );
      case 'reset':
        req.socket.destroy();
        return;
      case 'stall-headers':
        return; // never answers; the client's header timeout must fire
      case 'ignore-range':
        return forward(req, res, upstream.url, { dropHeaders: ['range'] });
      case 'stall-body':
        return forward(req, res, upstream.url, {
          onResponse(up) {
            res.writeHead(up.statusCode ?? 502, up.headers);
            let sent = 0;
            up.on('data', (chunk: Buffer) => {
              if (sent >= fault.afterBytes) return;
              const part = chunk.subarray(0, fault.afterBytes - sent);
              sent += part.length;
              res.write(part);
              if (sent >= fault.afterBytes) up.pause();
            });
            return true;
          },
        });
      case 'corrupt-body':
        return forward(req, res, upstream.url, {
          onResponse(up) {
            res.writeHead(up.statusCode ?? 502, up.headers);
            const at = fault.offset ?? Math.floor(Number(up.headers['content-length'] ?? 0) / 2);
            let seen = 0;
            up.on('data', (chunk: Buffer) => {
              const out = at >= seen && at < seen + chunk.length ? Buffer.from(chunk) : chunk;
              if (out !== chunk) out[at - seen]! ^= 0xff;
              seen += chunk.length;
              res.write(out);
            });
            up.on('end', () => res.end());
            return true;
          },
        });
    }
  });
  const listening = await listen(server);
  return { ...listening, requests, inject: (...faults) => queue.push(...faults) };
}
