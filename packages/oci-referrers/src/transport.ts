import { Agent, type Dispatcher, Pool, request } from 'undici';
import { basicAuthorization, parseTokenResponse, TokenCache, tokenRequest } from './auth.js';
import { type Challenge, parseChallenges, preferredChallenge } from './challenge.js';
import { CredentialCache } from './credential-cache.js';
import type { Credential, CredentialsProvider } from './credentials.js';
import { Deadline, sleep } from './deadline.js';
import { codeForResponse, parseErrorBody, RegistryError } from './errors.js';
import { type HostsConfig, hostOptionsForOrigin, registryOrigin } from './hosts.js';
import { redactUrl } from './redact.js';

export interface RetryOptions {
  /** Retries after the first attempt (connection errors, 429, 5xx). Default 4. */
  maxRetries?: number;
  /** First backoff; doubles each retry, with full jitter. Default 200 ms. */
  baseDelayMs?: number;
  /** Backoff ceiling. Default 5 s. */
  maxDelayMs?: number;
  /** A `Retry-After` longer than this fails at once instead of waiting. Default 30 s. */
  maxRetryAfterMs?: number;
}

export interface TimeoutOptions {
  /** TCP + TLS connect. Default 10 s. */
  connectMs?: number;
  /** Reads (GET, HEAD) and token requests: from request sent to response headers. Default 10 s. */
  headersMs?: number;
  /**
   * Writes (PUT, POST, PATCH, DELETE): from request sent to response headers. Default 60 s: a registry may
   * hash or copy a whole upload before it answers the last PUT.
   */
  writeHeadersMs?: number;
  /** Longest gap between two body chunks (a stalled body). Default 10 s. */
  bodyStallMs?: number;
  /**
   * Whole budget of one read (manifest, range, HEAD, tags or referrers page, with its token request and all
   * its retries; a blob stream up to its headers), after which it fails with TIMEOUT. Default 30 s.
   */
  readMs?: number;
}

export interface AgentOptions {
  hosts?: HostsConfig;
  timeouts?: TimeoutOptions;
  /** Connections per origin. Default 12. */
  connectionsPerOrigin?: number;
  /** Negotiate HTTP/2 (ALPN) on TLS origins. Default true. */
  http2?: boolean;
}

/**
 * An undici Agent tuned for many small concurrent range GETs: keep-alive, no pipelining (one request per
 * connection at a time, so a slow blob never blocks a small one), 12 connections per origin, HTTP/2 when
 * TLS allows it, per-host TLS settings (custom CA, skip verify).
 */
export function createRegistryAgent(options: AgentOptions = {}): Agent {
  const hosts = options.hosts ?? {};
  return new Agent({
    factory(origin, opts) {
      const originText = String(origin).replace(/\/$/, '');
      const host = hostOptionsForOrigin(hosts, originText);
      const tls = originText.startsWith('https:');
      return new Pool(origin, {
        ...opts,
        connections: options.connectionsPerOrigin ?? 12,
        pipelining: 1,
        keepAliveTimeout: 30_000,
        keepAliveMaxTimeout: 300_000,
        allowH2: tls && (options.http2 ?? true),
        connect: {
          timeout: options.timeouts?.connectMs ?? 10_000,
          ...(tls && host?.insecureSkipVerify ? { rejectUnauthorized: false } : {}),
          ...(tls && host?.ca ? { ca: host.ca } : {}),
        },
      });
    },
  });
}

export interface TransportOptions {
  hosts?: HostsConfig;
  credentials?: CredentialsProvider;
  dispatcher?: Dispatcher;
  retry?: RetryOptions;
  timeouts?: TimeoutOptions;
  userAgent?: string;
}

export type Method = 'GET' | 'HEAD' | 'PUT' | 'POST' | 'PATCH' | 'DELETE';

export interface HttpRequest {
  registry: string;
  method: Method;
  /** `/v2/...` on the registry, or an absolute URL the registry gave (upload Location). */
  path: string;
  headers?: Record<string, string>;
  body?: Uint8Array;
  /** Token scopes this request needs, e.g. `repository:library/alpine:pull`. */
  scopes: readonly string[];
  /** Statuses the caller handles; any other status becomes a RegistryError. */
  ok: readonly number[];
  /** What is being fetched, for error messages (`manifest docker.io/library/alpine:3`). */
  what: string;
  /** Whether failures may be retried. Default: true except for PATCH. */
  retry?: boolean;
  signal?: AbortSignal;
}

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** Final URL, after redirects. */
  url: URL;
}

export function header(res: { headers: HttpResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a header that may repeat (`WWW-Authenticate`): undici gives an array for repeats. */
export function headerValues(res: { headers: HttpResponse['headers'] }, name: string): string[] {
  const v = res.headers[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const NETWORK_CODES = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'EPIPE',
  'ETIMEDOUT',
  'ENOTFOUND',
  'EAI_AGAIN',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'UND_ERR_SOCKET',
  'UND_ERR_CLOSED',
]);
const TIMEOUT_CODES = new Set(['UND_ERR_CONNECT_TIMEOUT', 'UND_ERR_HEADERS_TIMEOUT', 'UND_ERR_BODY_TIMEOUT']);

/** Turns a low-level failure (undici, socket, abort) into a RegistryError; RegistryErrors pass through. */
export function mapFailure(error: unknown, method: string, url: URL | string): RegistryError {
  if (error instanceof RegistryError) return error;
  const shownUrl = redactUrl(url);
  const where = `${method} ${shownUrl}`;
  const code = (error as { code?: string }).code ?? (error as { cause?: { code?: string } }).cause?.code;
  if (code && TIMEOUT_CODES.has(code)) {
    const phase =
      code === 'UND_ERR_CONNECT_TIMEOUT'
        ? 'connect'
        : code === 'UND_ERR_HEADERS_TIMEOUT'
          ? 'headers'
          : 'body';
    return new RegistryError(
      'TIMEOUT',
      `${where}: timed out waiting for ${phase}; the registry is slow or unreachable`,
      { method, url: shownUrl, cause: error },
    );
  }
  if ((error as Error).name === 'AbortError') {
    return new RegistryError('NETWORK', `${where}: aborted`, { method, url: shownUrl, cause: error });
  }
  return new RegistryError(
    'NETWORK',
    `${where}: connection failed (${code ?? (error as Error).message}); check that the registry is reachable`,
    { method, url: shownUrl, cause: error },
  );
}

/** A body that broke after the headers (reset, stall): the caller may redo the whole request. */
export class TransientBodyError extends Error {
  constructor(readonly error: RegistryError) {
    super(error.message);
  }
}

/** Maps a failure while reading a body: transient ones are wrapped so that `Transport.read` can redo them. */
export function bodyFailure(error: unknown, method: string, url: URL): Error {
  const mapped = mapFailure(error, method, url);
  return isRetryableFailure(error) ? new TransientBodyError(mapped) : mapped;
}

export function isRetryableFailure(error: unknown): boolean {
  const code = (error as { code?: string }).code;
  return code !== undefined && (NETWORK_CODES.has(code) || TIMEOUT_CODES.has(code));
}

/**
 * Stops reading a body and frees its connection. undici emits an AbortError on a body destroyed without a
 * listener; that is expected here, so it is swallowed.
 */
export function abandon(body: {
  on(event: 'error', listener: () => void): unknown;
  destroy(): unknown;
}): void {
  body.on('error', () => undefined);
  body.destroy();
}

/** Reads at most `limit` bytes of a body, then drops the rest. */
export async function readLimited(body: HttpResponse['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = limit - total;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    total += Math.min(chunk.length, room);
    if (total >= limit) {
      abandon(body);
      break;
    }
  }
  return Buffer.concat(chunks);
}

async function discard(body: HttpResponse['body']): Promise<void> {
  try {
    await body.dump({ limit: 64 * 1024 });
  } catch {
    // The connection is dropped instead of reused; nothing else to do.
  }
}

function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Where a redirect points. A bad Location fails here as PROTOCOL: left to `new URL`, its TypeError would
 * carry the raw text (and any signature in its query) in `input`.
 */
function redirectTarget(location: string, from: URL, what: string): URL {
  let target: URL | undefined;
  try {
    target = new URL(location, from);
  } catch {
    target = undefined;
  }
  if (target?.protocol !== 'http:' && target?.protocol !== 'https:') {
    throw new RegistryError(
      'PROTOCOL',
      `${what}: ${redactUrl(from)} redirected to ${redactUrl(location)}, which is not an http(s) URL`,
    );
  }
  return target;
}

/**
 * Sends registry requests: auth (anonymous, basic, bearer tokens cached per scope, one retry after a 401),
 * redirects (Authorization only to the registry's own origin), bounded jittered retries on connection
 * errors, 429 and 5xx, and timeouts. Every failure is a RegistryError.
 */
export class Transport {
  private readonly dispatcher: Dispatcher;
  private readonly hosts: HostsConfig;
  private readonly tokens = new TokenCache();
  /** Registries that asked for basic auth: send it up front next time. */
  private readonly basicHosts = new Set<string>();
  private readonly credentials: CredentialCache;
  private readonly retry: Required<RetryOptions>;
  private readonly timeouts: Required<TimeoutOptions>;

  constructor(private readonly options: TransportOptions = {}) {
    this.hosts = options.hosts ?? {};
    this.credentials = new CredentialCache(options.credentials);
    this.retry = {
      maxRetries: options.retry?.maxRetries ?? 4,
      baseDelayMs: options.retry?.baseDelayMs ?? 200,
      maxDelayMs: options.retry?.maxDelayMs ?? 5000,
      maxRetryAfterMs: options.retry?.maxRetryAfterMs ?? 30_000,
    };
    this.timeouts = {
      connectMs: options.timeouts?.connectMs ?? 10_000,
      headersMs: options.timeouts?.headersMs ?? 10_000,
      writeHeadersMs: options.timeouts?.writeHeadersMs ?? 60_000,
      bodyStallMs: options.timeouts?.bodyStallMs ?? 10_000,
      readMs: options.timeouts?.readMs ?? 30_000,
    };
    this.dispatcher =
      options.dispatcher ?? createRegistryAgent({ hosts: this.hosts, timeouts: this.timeouts });
  }

  origin(registry: string): string {
    return registryOrigin(registry, this.hosts[registry]);
  }

  async close(): Promise<void> {
    if (!this.options.dispatcher) await this.dispatcher.close();
  }

  /** Sends with retries; answers with a status in `req.ok` or throws a RegistryError. */
  async send(req: HttpRequest): Promise<HttpResponse> {
    const retryable = req.retry ?? req.method !== 'PATCH';
    const url = new URL(req.path, this.origin(req.registry));
    for (let attempt = 0; ; attempt++) {
      req.signal?.throwIfAborted(); // an aborted read sends nothing more
      const canRetry = retryable && attempt < this.retry.maxRetries;
      let res: HttpResponse;
      try {
        res = await this.sendAuthorized(req, url);
      } catch (error) {
        if (canRetry && isRetryableFailure(error)) {
          await sleep(this.backoff(attempt), req.signal);
          continue;
        }
        throw mapFailure(error, req.method, url);
      }
      if (req.ok.includes(res.status)) return res;
      const transient = res.status === 429 || (res.status >= 500 && res.status !== 501);
      if (canRetry && transient) {
        const after = retryAfterMs(header(res, 'retry-after'));
        if (after === undefined || after <= this.retry.maxRetryAfterMs) {
          await discard(res.body);
          await sleep(after ?? this.backoff(attempt), req.signal);
          continue;
        }
      }
      throw await this.responseError(req, res);
    }
  }

  /** A read's time budget (`timeouts.readMs`) joined with the caller's signal; dispose it when done. */
  deadline(what: string, signal?: AbortSignal): Deadline {
    return new Deadline(this.timeouts.readMs, what, signal);
  }

  /**
   * Runs an idempotent read whose result is held in memory (manifest, range, listing) within its deadline,
   * and all of it again when its body broke after the headers, within the same retry budget. `read` must
   * pass the signal it gets to its requests.
   */
  async read<T>(
    what: string,
    signal: AbortSignal | undefined,
    read: (signal: AbortSignal) => Promise<T>,
  ): Promise<T> {
    const deadline = this.deadline(what, signal);
    try {
      for (let attempt = 0; ; attempt++) {
        try {
          return await read(deadline.signal);
        } catch (error) {
          if (!(error instanceof TransientBodyError)) throw error;
          if (attempt >= this.retry.maxRetries) throw error.error;
          await sleep(this.backoff(attempt), deadline.signal);
        }
      }
    } finally {
      deadline.dispose();
    }
  }

  private backoff(attempt: number): number {
    const ceiling = Math.min(this.retry.maxDelayMs, this.retry.baseDelayMs * 2 ** attempt);
    return Math.random() * ceiling;
  }

  private async responseError(req: HttpRequest, res: HttpResponse): Promise<RegistryError> {
    const text =
      req.method === 'HEAD'
        ? ''
        : (await readLimited(res.body, 64 * 1024).catch(() => Buffer.alloc(0))).toString();
    if (req.method === 'HEAD') await discard(res.body);
    const body = parseErrorBody(text);
    const code = codeForResponse(res.status, body.code);
    const detail = body.code ? `${body.code}: ${body.message ?? ''}`.trim() : `HTTP ${res.status}`;
    const refusedElsewhere =
      (code === 'UNAUTHORIZED' || code === 'DENIED') && res.url.origin !== this.origin(req.registry);
    const hint = refusedElsewhere
      ? '; that host is not the registry (it redirected there, e.g. to blob storage) and never gets credentials from this client: a pre-signed URL may have expired, retry'
      : code === 'UNAUTHORIZED'
        ? '; check the credentials for this registry (docker login / config.json)'
        : code === 'DENIED'
          ? '; the credentials lack permission for this repository'
          : code === 'TOOMANYREQUESTS'
            ? '; the registry rate-limits you, retry later'
            : '';
    return new RegistryError(
      code,
      `${req.what}: ${req.method} ${redactUrl(res.url)} failed with ${detail}${hint}`,
      {
        status: res.status,
        registryCode: body.code,
        registryMessage: body.message,
        method: req.method,
        url: redactUrl(res.url),
      },
    );
  }

  /**
   * One attempt: pre-emptive auth from cache, then one re-authorization after a 401. When what was sent (a
   * cached token or basic credentials) is refused, the token is dropped and the credentials provider asked
   * again: the registry may have revoked the token and the user rotated the password.
   */
  private async sendAuthorized(req: HttpRequest, url: URL): Promise<HttpResponse> {
    const generationAtStart = this.credentials.generation(req.registry);
    const sent = await this.cachedAuthorization(req);
    const res = await this.sendFollowing(req, url, sent?.header);
    // Only the registry's own 401 is answered: one from a redirect target (blob storage, a CDN) is never a
    // reason to send it credentials, nor to fetch a token from a realm it names.
    if (res.status !== 401 || res.url.origin !== this.origin(req.registry)) return res;
    const challenge = await this.challengeToAnswer(req, res);
    if (!challenge) return res;
    if (sent) {
      this.tokens.delete(req.registry, req.scopes);
      await this.credentials.refresh(req.registry, sent.generation);
    }
    const authorization = await this.authorize(req, challenge, sent?.generation ?? generationAtStart);
    return this.sendFollowing(req, url, authorization);
  }

  /**
   * The challenge of a 401 that this client answers (Bearer over Basic), its body discarded; undefined (body
   * left for the error) when it offers nothing usable. A malformed header is a PROTOCOL error.
   */
  private async challengeToAnswer(req: HttpRequest, res: HttpResponse): Promise<Challenge | undefined> {
    let challenges: Challenge[];
    try {
      challenges = parseChallenges(headerValues(res, 'www-authenticate'));
    } catch (error) {
      await discard(res.body);
      throw new RegistryError(
        'PROTOCOL',
        `${req.what}: ${req.method} ${redactUrl(res.url)} answered 401 with an unreadable WWW-Authenticate header: ${(error as Error).message}`,
        { status: 401, method: req.method, url: redactUrl(res.url), cause: error },
      );
    }
    const challenge = preferredChallenge(challenges);
    if (challenge) await discard(res.body);
    return challenge;
  }

  /**
   * The Authorization a request can carry before any challenge: a cached token for its scopes, or basic
   * credentials for a registry that asked for them; with the credential generation it came from.
   */
  private async cachedAuthorization(
    req: HttpRequest,
  ): Promise<{ header: string; generation: number } | undefined> {
    const token = this.tokens.get(req.registry, req.scopes);
    if (token) return { header: `Bearer ${token}`, generation: this.credentials.generation(req.registry) };
    if (!this.basicHosts.has(req.registry)) return undefined;
    const { credential, generation } = await this.credentials.get(req.registry);
    const header = credential && basicAuthorization(credential);
    return header ? { header, generation } : undefined;
  }

  /**
   * The Authorization that answers `challenge`. A token server that refuses credentials read before this
   * request (generation <= `seen`) gets one more try with the provider's fresh answer.
   */
  private async authorize(req: HttpRequest, challenge: Challenge, seen: number): Promise<string | undefined> {
    const { credential, generation } = await this.credentials.get(req.registry);
    if (challenge.scheme === 'basic') {
      this.basicHosts.add(req.registry);
      return credential ? basicAuthorization(credential) : undefined;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    this.tokens.delete(req.registry, req.scopes);
    try {
      return `Bearer ${await this.fetchToken(req, challenge, credential)}`;
    } catch (error) {
      const refused = error instanceof RegistryError && (error.status === 401 || error.status === 403);
      if (!refused || generation > seen) throw error;
      const fresh = await this.credentials.refresh(req.registry, generation);
      return `Bearer ${await this.fetchToken(req, challenge, fresh.credential)}`;
    }
  }

  private async fetchToken(
    req: HttpRequest,
    challenge: Challenge,
    credential: Credential | undefined,
  ): Promise<string> {
    let spec: ReturnType<typeof tokenRequest>;
    try {
      spec = tokenRequest(challenge, req.scopes, credential);
    } catch {
      throw new RegistryError(
        'PROTOCOL',
        `${req.what}: the registry sent a bearer challenge with an invalid realm`,
      );
    }
    const where = `token server ${redactUrl(spec.url)}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(spec.url, {
        dispatcher: this.dispatcher,
        method: spec.method,
        headers: { ...spec.headers, 'user-agent': this.userAgent() },
        body: spec.body,
        headersTimeout: this.timeouts.headersMs,
        bodyTimeout: this.timeouts.bodyStallMs,
        signal: req.signal,
      });
    } catch (error) {
      throw mapFailure(error, spec.method, spec.url);
    }
    const text = (await readLimited(res.body, 1 << 20)).toString();
    if (res.statusCode !== 200) {
      const body = parseErrorBody(text);
      const code =
        res.statusCode === 401
          ? 'UNAUTHORIZED'
          : res.statusCode === 403
            ? 'DENIED'
            : codeForResponse(res.statusCode, body.code);
      throw new RegistryError(
        code,
        `${req.what}: ${where} refused a token (HTTP ${res.statusCode}${body.code ? ` ${body.code}` : ''})${credential ? '; check the credentials for this registry' : '; this registry needs credentials'}`,
        {
          status: res.statusCode,
          registryCode: body.code,
          registryMessage: body.message,
          url: redactUrl(spec.url),
        },
      );
    }
    const parsed = parseTokenResponse(text);
    if (!parsed) throw new RegistryError('PROTOCOL', `${req.what}: ${where} answered without a token`);
    this.tokens.set(req.registry, req.scopes, parsed.token, parsed.expiresIn);
    return parsed.token;
  }

  private userAgent(): string {
    return this.options.userAgent ?? 'soci-ts/0.1';
  }

  /** Sends and follows redirects; Authorization goes only to the registry's own origin. */
  private async sendFollowing(
    req: HttpRequest,
    start: URL,
    authorization: string | undefined,
  ): Promise<HttpResponse> {
    const registryOrigin = this.origin(req.registry);
    let url = start;
    let method: Method = req.method;
    let body = req.body;
    for (let hop = 0; hop <= 5; hop++) {
      const headers: Record<string, string> = { 'user-agent': this.userAgent(), ...req.headers };
      if (authorization && url.origin === registryOrigin) headers.authorization = authorization;
      const res = await request(url, {
        dispatcher: this.dispatcher,
        method,
        headers,
        body: body === undefined ? undefined : Buffer.from(body.buffer, body.byteOffset, body.byteLength),
        headersTimeout:
          method === 'GET' || method === 'HEAD' ? this.timeouts.headersMs : this.timeouts.writeHeadersMs,
        bodyTimeout: this.timeouts.bodyStallMs,
        signal: req.signal,
      });
      const location = header(res, 'location');
      if (!REDIRECTS.has(res.statusCode) || !location || req.ok.includes(res.statusCode)) {
        return { status: res.statusCode, headers: res.headers, body: res.body, url };
      }
      await discard(res.body);
      url = redirectTarget(location, url, req.what);
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
    }
    throw new RegistryError('PROTOCOL', `${req.what}: more than 5 redirects from ${redactUrl(start)}`);
  }
}
