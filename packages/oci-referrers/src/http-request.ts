// What a request to a registry is, apart from the transport that sends it, so that the authorizer
// (which the transport uses) can name it without importing the transport.

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
   * its retries; a blob stream up to its headers), after which it fails with REGISTRY_TIMEOUT. Default 30 s.
   */
  readMs?: number;
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
