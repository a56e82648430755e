import { invalidReference } from './errors.js';
import { parseReference, type Reference } from './reference.js';
import { Repository } from './repository.js';
import type { RepositoryContext } from './repository-endpoint.js';
import { Transport, type TransportOptions } from './transport.js';

export interface RegistryClientOptions extends TransportOptions {
  /** Blobs up to this size are uploaded in one PUT. Default 8 MiB. */
  monolithicUploadLimit?: number;
  /** PATCH chunk size for larger uploads. Default 8 MiB. */
  chunkSize?: number;
}

/**
 * Talks to any number of registries: holds the connection pool (an undici Agent unless `dispatcher` is
 * given), the token cache, the credentials provider and per-host options. Cheap to keep for the process.
 */
export class RegistryClient {
  private readonly context: RepositoryContext;

  constructor(options: RegistryClientOptions = {}) {
    this.context = {
      transport: new Transport(options),
      noRangeHosts: new Set(),
      monolithicUploadLimit: options.monolithicUploadLimit ?? 8 * 1024 * 1024,
      chunkSize: options.chunkSize ?? 8 * 1024 * 1024,
    };
  }

  /**
   * A repository by reference or name: `127.0.0.1:5000/app`, `alpine` (Docker Hub `library/alpine`) or a
   * parsed Reference. A tag or digest in the string is ignored here.
   */
  repository(reference: string | Reference): Repository {
    const ref = typeof reference === 'string' ? parseReference(reference) : reference;
    if (!ref.repository) throw invalidReference(String(reference), 'it names no repository');
    return new Repository(this.context, ref.registry, ref.repository);
  }

  /** false once the registry answered 200 to a Range GET; undefined when not known yet. */
  supportsRanges(registry: string): boolean | undefined {
    return this.context.noRangeHosts.has(registry) ? false : undefined;
  }

  /** Closes the connections of the client's own agent (not of a dispatcher passed in). */
  close(): Promise<void> {
    return this.context.transport.close();
  }
}
