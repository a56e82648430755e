/** Reads images from containerd's content store (`--containerd-address`), e.g. after `ctr image pull`. */
import { ContainerdClient, isNotFound } from '@soci-ts/containerd-client';
import type { Descriptor } from '@soci-ts/oci-referrers';
import type { AbortOptions, ImageSource } from '@soci-ts/soci-index';
import { CliError } from './errors.js';

export class ContainerdSource implements ImageSource {
  constructor(
    private readonly client: ContainerdClient,
    readonly reference: string,
  ) {}

  /** The client whose calls `options.signal` cancels. */
  private calls(options: AbortOptions | undefined): ContainerdClient {
    return options?.signal ? this.client.withSignal(options.signal) : this.client;
  }

  async resolve(options?: AbortOptions): Promise<Descriptor> {
    try {
      return (await this.calls(options).images.get(this.reference)).target;
    } catch (err) {
      if (isNotFound(err)) {
        throw new CliError(
          'CLI_NOT_FOUND',
          `containerd (namespace ${this.client.namespace}) has no image ${this.reference}; pull it first, e.g. ctr -n ${this.client.namespace} image pull ${this.reference}`,
        );
      }
      throw err;
    }
  }

  fetchManifest(descriptor: Descriptor, options?: AbortOptions): Promise<Uint8Array> {
    return this.calls(options).content.readAll(descriptor.digest);
  }

  fetchBlob(descriptor: Descriptor, options?: AbortOptions): AsyncIterable<Uint8Array> {
    return this.calls(options).content.read(descriptor.digest);
  }

  async fetchBlobRange(
    descriptor: Descriptor,
    start: number,
    end: number,
    options?: AbortOptions,
  ): Promise<Uint8Array> {
    if (end <= start) return new Uint8Array(0);
    const parts: Uint8Array[] = [];
    for await (const part of this.calls(options).content.read(descriptor.digest, {
      offset: start,
      size: end - start,
    })) {
      parts.push(part);
    }
    return Buffer.concat(parts);
  }
}

export function openContainerdSource(
  address: string,
  namespace: string,
  ref: string,
  onClose: (fn: () => Promise<void>) => void,
): ContainerdSource {
  const client = new ContainerdClient({ address, namespace });
  onClose(async () => {
    client.close();
  });
  return new ContainerdSource(client, ref);
}
