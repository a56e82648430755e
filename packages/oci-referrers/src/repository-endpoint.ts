import type { HttpRequest } from './http-request.js';
import type { HttpResponse } from './http-response.js';
import { isDigest } from './reference.js';
import type { Transport } from './transport.js';

/** Options of every read. */
export interface ReadOptions {
  /**
   * Aborts the read (its token request, its retries and, for a blob stream, the stream) with a
   * REGISTRY_ABORTED RegistryError whose cause is the signal's reason.
   */
  signal?: AbortSignal;
}

/** Options of every write (push, mount). */
export interface WriteOptions {
  /**
   * Aborts the write between or during its requests with REGISTRY_ABORTED (cause: the signal's reason). An
   * upload session left open expires on the registry.
   */
  signal?: AbortSignal;
}

/** Shared state of one RegistryClient that its repositories use. */
export interface RepositoryContext {
  transport: Transport;
  /** Registries seen answering 200 to a Range request. */
  noRangeHosts: Set<string>;
  /** Blob uploads up to this size go in one PUT; larger ones in PATCH chunks of `chunkSize`. */
  monolithicUploadLimit: number;
  chunkSize: number;
}

/** A manifest, or a referrers page, larger than this is refused. */
export const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;

/**
 * Where one repository of a registry is on the wire: its requests (with the token scopes they need) and the
 * names its errors give it. The parts of a Repository (manifests, blobs, uploads, referrers) share one.
 */
export class RepositoryEndpoint {
  constructor(
    readonly context: RepositoryContext,
    readonly registry: string,
    readonly name: string,
  ) {}

  get transport(): Transport {
    return this.context.transport;
  }

  scopes(push = false, extraPull: string[] = []): string[] {
    return [
      `repository:${this.name}:${push ? 'pull,push' : 'pull'}`,
      ...extraPull.map((r) => `repository:${r}:pull`),
    ];
  }

  /** Sends a request to this repository's registry, with pull scope unless `scopes` says otherwise. */
  send(req: Omit<HttpRequest, 'registry' | 'scopes'> & { scopes?: string[] }): Promise<HttpResponse> {
    return this.transport.send({ registry: this.registry, scopes: this.scopes(), ...req });
  }

  describe(what: string, reference: string): string {
    const sep = isDigest(reference) ? '@' : ':';
    return `${what} ${this.registry}/${this.name}${sep}${reference}`;
  }
}

/** `Link: </v2/...?last=x>; rel="next"` -> the next page's URL. */
export function nextLink(link: string | undefined, base: URL): string | undefined {
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link ?? '');
  return m ? new URL(m[1]!, base).href : undefined;
}
