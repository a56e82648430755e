/** Reads images from a registry repository through @soci-ts/oci-referrers. */
import { formatReference, type Reference, type Repository } from '@soci-ts/oci-referrers';
import type { AbortOptions } from './abort.js';
import type { Descriptor } from './oci.js';
import type { ImageSource } from './source.js';

export class RegistrySource implements ImageSource {
  readonly reference: string;

  constructor(
    readonly repository: Repository,
    readonly ref: Reference,
  ) {
    this.reference = formatReference(ref);
  }

  resolve(options: AbortOptions = {}): Promise<Descriptor> {
    return this.repository.resolve(this.ref.digest ?? this.ref.tag ?? 'latest', { signal: options.signal });
  }

  async fetchManifest(descriptor: Descriptor, options: AbortOptions = {}): Promise<Uint8Array> {
    return (await this.repository.fetchManifest(descriptor, { signal: options.signal })).bytes;
  }

  async *fetchBlob(descriptor: Descriptor, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    yield* await this.repository.fetchBlob(descriptor, { signal: options.signal });
  }

  fetchBlobRange(
    descriptor: Descriptor,
    start: number,
    end: number,
    options: AbortOptions = {},
  ): Promise<Uint8Array> {
    return this.repository.fetchBlobRange(descriptor.digest, start, end, { signal: options.signal });
  }
}
