import { assertDigest, digestOf } from './digest.js';
import { digestMismatch, RegistryError } from './errors.js';
import { discardBody, header } from './http-response.js';
import { isDigest } from './reference.js';
import type { ReadOptions, RepositoryEndpoint, WriteOptions } from './repository-endpoint.js';
import { type Descriptor, MediaType } from './types.js';

/** A blob to push that is too big to hold in memory: its bytes as a stream, with digest and size known. */
export interface BlobSource {
  stream: AsyncIterable<Uint8Array>;
  digest: string;
  size: number;
}

export interface PushBlobOptions extends WriteOptions {
  mediaType?: string;
  /** Try a cross-repository mount from these repositories (same registry) before uploading. */
  mountFrom?: string[];
}

/** How an upload asks whether the repository already has a blob (a HEAD). */
export interface BlobPresence {
  blobExists(digest: string, options?: ReadOptions): Promise<Descriptor | undefined>;
}

/** The blob pushes of one repository: cross-repository mounts, one PUT, or PATCH chunks then a PUT. */
export class BlobUploader {
  constructor(
    private readonly endpoint: RepositoryEndpoint,
    private readonly presence: BlobPresence,
  ) {}

  /** True when the registry mounted the blob; else the upload session it opened is cancelled. */
  mountBlob(
    descriptor: Descriptor | string,
    fromRepository: string,
    options: WriteOptions = {},
  ): Promise<boolean> {
    const digest = typeof descriptor === 'string' ? descriptor : descriptor.digest;
    const what = this.endpoint.describe(`mount blob from ${fromRepository}`, digest);
    return this.endpoint.transport.write(what, options.signal, async (signal) => {
      const session = await this.startUpload(digest, signal, fromRepository);
      if (session === 'mounted') return true;
      await this.cancelUpload(session);
      return false;
    });
  }

  /** HEAD, then the mounts, then one upload: see Repository.pushBlob. */
  async pushBlob(content: Uint8Array | BlobSource, options: PushBlobOptions = {}): Promise<Descriptor> {
    const isBytes = content instanceof Uint8Array;
    const digest = isBytes ? digestOf(content) : content.digest;
    assertDigest(digest);
    const what = this.endpoint.describe('push blob', digest);
    return this.endpoint.transport.write(what, options.signal, (signal) =>
      this.push(content, digest, options, what, signal),
    );
  }

  private async push(
    content: Uint8Array | BlobSource,
    digest: string,
    options: PushBlobOptions,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<Descriptor> {
    const isBytes = content instanceof Uint8Array;
    const size = isBytes ? content.length : content.size;
    const descriptor: Descriptor = { mediaType: options.mediaType ?? MediaType.OctetStream, digest, size };
    if (await this.presence.blobExists(digest, { signal })) return descriptor;
    let session: string | 'mounted' | undefined;
    for (const from of options.mountFrom ?? []) {
      if (session) await this.cancelUpload(session);
      session = await this.startUpload(digest, signal, from);
      if (session === 'mounted') return descriptor;
    }
    session ??= await this.startUpload(digest, signal);
    let location = session;
    if (isBytes && size <= this.endpoint.context.monolithicUploadLimit) {
      await this.finishUpload(location, digest, content, what, signal);
      return descriptor;
    }
    let offset = 0;
    for await (const chunk of chunked(
      isBytes ? [content] : content.stream,
      this.endpoint.context.chunkSize,
    )) {
      const res = await this.endpoint.send({
        scopes: this.endpoint.scopes(true),
        method: 'PATCH',
        path: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        ok: [202],
        what,
        signal,
      });
      await discardBody(res);
      location = header(res, 'location') ?? location;
      offset += chunk.length;
    }
    if (offset !== size) {
      await this.cancelUpload(location);
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `${what}: the stream gave ${offset} bytes, the descriptor says ${size}`,
      );
    }
    await this.finishUpload(location, digest, undefined, what, signal);
    return descriptor;
  }

  /** POST an upload (or a mount): the upload Location, or 'mounted'. */
  private async startUpload(
    digest: string,
    signal: AbortSignal | undefined,
    mountFrom?: string,
  ): Promise<string | 'mounted'> {
    const query = mountFrom
      ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`
      : '';
    const res = await this.endpoint.send({
      scopes: this.endpoint.scopes(true, mountFrom ? [mountFrom] : []),
      method: 'POST',
      path: `/v2/${this.endpoint.name}/blobs/uploads/${query}`,
      ok: [201, 202],
      what: this.endpoint.describe(
        mountFrom ? `mount blob from ${mountFrom}` : 'start upload of blob',
        digest,
      ),
      signal,
    });
    await discardBody(res);
    if (res.status === 201) return 'mounted';
    const location = header(res, 'location');
    if (!location)
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `${this.endpoint.describe('upload of blob', digest)}: 202 without Location`,
      );
    return new URL(location, res.url).href;
  }

  private async finishUpload(
    location: string,
    digest: string,
    body: Uint8Array | undefined,
    what: string,
    signal: AbortSignal | undefined,
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.endpoint.send({
      scopes: this.endpoint.scopes(true),
      method: 'PUT',
      path: url.href,
      headers: { 'content-type': 'application/octet-stream' },
      body: body ?? new Uint8Array(0),
      ok: [201, 204],
      what,
      signal,
    });
    await discardBody(res);
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored !== digest) throw digestMismatch(what, digest, stored);
  }

  /** Best effort, and never aborted: it cleans up after a failure, an abort included. */
  private async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.endpoint.send({
        scopes: this.endpoint.scopes(true),
        method: 'DELETE',
        path: location,
        ok: [200, 202, 204, 404],
        what: 'cancel upload',
        retry: false,
      });
      await discardBody(res);
    } catch {
      // An abandoned upload session expires on the registry by itself.
    }
  }
}

/** Regroups a byte stream into chunks of exactly `size` bytes (the last one shorter). */
async function* chunked(
  source: AsyncIterable<Uint8Array> | Iterable<Uint8Array>,
  size: number,
): AsyncGenerator<Uint8Array> {
  let pending: Uint8Array[] = [];
  let pendingLength = 0;
  for await (const piece of source) {
    let rest = piece;
    while (pendingLength + rest.length >= size) {
      const take = size - pendingLength;
      pending.push(rest.subarray(0, take));
      yield Buffer.concat(pending);
      rest = rest.subarray(take);
      pending = [];
      pendingLength = 0;
    }
    if (rest.length) {
      pending.push(rest);
      pendingLength += rest.length;
    }
  }
  if (pendingLength) yield Buffer.concat(pending);
}
