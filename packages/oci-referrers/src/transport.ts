import { Agent, type Dispatcher, Pool, request } from 'undici';
import { Authorizer } from './authorizer.js';
import type { CredentialsProvider } from './credentials.js';
import { Deadline, sleep } from './deadline.js';
import { codeForResponse, parseErrorBody, RegistryError } from './errors.js';
import { type HostsConfig, hostOptionsForOrigin, registryOrigin } from './hosts.js';
import { isRetryableFailure, mapFailure, TransientBodyError } from './http-failure.js';
import type { HttpRequest, Method, TimeoutOptions } from './http-request.js';
import { discardBody, type HttpResponse, header, readLimited, SKIPPED_BODY_LIMIT } from './http-response.js';
import { redactUrl } from './redact.js';

// blob-range.ts reads its bodies with these.

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

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
function retryAfterMs(value: string | undefined): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * Where a redirect points. A bad Location fails here as REGISTRY_PROTOCOL: left to `new URL`, its TypeError would
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
      'REGISTRY_PROTOCOL',
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
  private readonly auth: Authorizer;
  private readonly userAgent: string;
  private readonly retry: Required<RetryOptions>;
  private readonly timeouts: Required<TimeoutOptions>;

  constructor(private readonly options: TransportOptions = {}) {
    this.hosts = options.hosts ?? {};
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
    this.userAgent = options.userAgent ?? 'soci-ts/0.1';
    this.auth = new Authorizer({
      credentials: options.credentials,
      dispatcher: this.dispatcher,
      timeouts: this.timeouts,
      userAgent: this.userAgent,
    });
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
          await discardBody(res, SKIPPED_BODY_LIMIT);
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
          if (attempt >= this.retry.maxRetries) throw error.failure;
          await sleep(this.backoff(attempt), deadline.signal);
        }
      }
    } finally {
      deadline.dispose();
    }
  }

  /**
   * Runs a write (a push of several requests, a mount) so that the caller's signal aborts it with REGISTRY_ABORTED.
   * No time budget: each request keeps its own timeouts (`writeHeadersMs`), as an upload may take long.
   */
  async write<T>(
    what: string,
    signal: AbortSignal | undefined,
    write: (signal: AbortSignal | undefined) => Promise<T>,
  ): Promise<T> {
    if (!signal) return write(undefined);
    const scope = new Deadline(undefined, what, signal);
    try {
      return await write(scope.signal);
    } finally {
      scope.dispose();
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
    if (req.method === 'HEAD') await discardBody(res, SKIPPED_BODY_LIMIT);
    const body = parseErrorBody(text);
    const code = codeForResponse(res.status, body.code);
    const detail = body.code ? `${body.code}: ${body.message ?? ''}`.trim() : `HTTP ${res.status}`;
    const refusedElsewhere =
      (code === 'REGISTRY_UNAUTHORIZED' || code === 'REGISTRY_DENIED') &&
      res.url.origin !== this.origin(req.registry);
    const hint = refusedElsewhere
      ? '; that host is not the registry (it redirected there, e.g. to blob storage) and never gets credentials from this client: a pre-signed URL may have expired, retry'
      : code === 'REGISTRY_UNAUTHORIZED'
        ? '; check the credentials for this registry (docker login / config.json)'
        : code === 'REGISTRY_DENIED'
          ? '; the credentials lack permission for this repository'
          : code === 'REGISTRY_TOOMANYREQUESTS'
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
    const generationAtStart = this.auth.generation(req.registry);
    const sent = await this.auth.cachedAuthorization(req);
    const res = await this.sendFollowing(req, url, sent?.header);
    // Only the registry's own 401 is answered: one from a redirect target (blob storage, a CDN) is never a
    // reason to send it credentials, nor to fetch a token from a realm it names.
    if (res.status !== 401 || res.url.origin !== this.origin(req.registry)) return res;
    const challenge = await this.auth.challengeToAnswer(req, res);
    if (!challenge) return res;
    if (sent) await this.auth.refused(req, sent.generation);
    const authorization = await this.auth.authorize(req, challenge, sent?.generation ?? generationAtStart);
    return this.sendFollowing(req, url, authorization);
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
      const headers: Record<string, string> = { 'user-agent': this.userAgent, ...req.headers };
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
      await discardBody(res, SKIPPED_BODY_LIMIT);
      url = redirectTarget(location, url, req.what);
      if (res.statusCode === 303) {
        method = 'GET';
        body = undefined;
      }
    }
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `${req.what}: more than 5 redirects from ${redactUrl(start)}`,
    );
  }
}
