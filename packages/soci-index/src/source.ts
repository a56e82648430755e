import type { AbortOptions } from './abort.js';
import type { Descriptor } from './oci.js';

/**
 * Where an image is read from: a registry repository, an OCI layout directory, an
 * oci-archive tar. Only reads; every method takes digests from manifests it served. `signal`
 * cancels a read (a registry source passes it to its requests; local sources may finish a
 * short read, the caller drops it).
 */
export interface ImageSource {
  /** The reference as the user wrote it, for messages and the store's records. */
  readonly reference: string;
  /** Descriptor of what the reference names: an image manifest or an image index. */
  resolve(options?: AbortOptions): Promise<Descriptor>;
  /** Bytes of a manifest or index. */
  fetchManifest(descriptor: Descriptor, options?: AbortOptions): Promise<Uint8Array>;
  /** A blob, streamed in order. */
  fetchBlob(descriptor: Descriptor, options?: AbortOptions): AsyncIterable<Uint8Array>;
  /** Bytes [start, end) of a blob. */
  fetchBlobRange(
    descriptor: Descriptor,
    start: number,
    end: number,
    options?: AbortOptions,
  ): Promise<Uint8Array>;
}
