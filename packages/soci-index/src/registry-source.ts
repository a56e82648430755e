/** Reads images from a registry repository through @soci-ts/oci-referrers. */
import { formatReference, type Reference, type Repository } from '@soci-ts/oci-referrers';
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

  resolve(): Promise<Descriptor> {
    return this.repository.resolve(this.ref.digest ?? this.ref.tag ?? 'latest');
  }

  async fetchManifest(descriptor: Descriptor): Promise<Uint8Array> {
    return (await this.repository.fetchManifest(descriptor)).bytes;
  }

  async *fetchBlob(descriptor: Descriptor): AsyncIterable<Uint8Array> {
    yield* await this.repository.fetchBlob(descriptor);
  }

  fetchBlobRange(descriptor: Descriptor, start: number, end: number): Promise<Uint8Array> {
    return this.repository.fetchBlobRange(descriptor.digest, start, end);
  }
}
