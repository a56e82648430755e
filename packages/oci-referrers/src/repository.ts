import type { Readable } from 'node:stream';
import {
  assertRange,
  type BlobRangeReader,
  parseContentRange,
  readExactly,
  sliceFullBody,
} from './blob-range.js';
import { type BlobSource, BlobUploader, type PushBlobOptions } from './blob-upload.js';
import { assertDigest, createVerifyingStream, digestOf } from './digest.js';
import { digestMismatch, RegistryError } from './errors.js';
import { bodyFailure, mapFailure } from './http-failure.js';
import { abandon, discardBody, type HttpResponse, header, readLimited } from './http-response.js';
import { selectPlatform } from './platform.js';
import { isDigest } from './reference.js';
import { Referrers, type ReferrersOptions, referrerDescriptor } from './referrers.js';
import {
  MAX_MANIFEST_BYTES,
  nextLink,
  type ReadOptions,
  type RepositoryContext,
  RepositoryEndpoint,
  type WriteOptions,
} from './repository-endpoint.js';
import {
  type Descriptor,
  type ImageIndex,
  isImageIndex,
  MANIFEST_MEDIA_TYPES,
  type Manifest,
  MediaType,
  type Platform,
} from './types.js';

/** A manifest as received: its exact bytes, the parsed JSON and a descriptor with the computed digest. */
export interface FetchedManifest<M extends Manifest = Manifest> {
  descriptor: Descriptor;
  bytes: Uint8Array;
  manifest: M;
}

/** Options of `Repository.pushManifest`. */
export interface PushManifestOptions extends WriteOptions {
  /** Tag to push under; default: the manifest's own digest. */
  tag?: string;
  /** Content-Type; default: the manifest's `mediaType`, else OCI manifest or index by its shape. */
  mediaType?: string;
}

const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/**
 * One repository of a registry (`127.0.0.1:5000` + `library/alpine`). All methods throw RegistryError; each
 * read and write takes `{ signal }` and passes it to every request it makes.
 */
export class Repository {
  private readonly endpoint: RepositoryEndpoint;
  private readonly uploads: BlobUploader;
  private readonly referrersOf: Referrers;

  constructor(
    context: RepositoryContext,
    readonly registry: string,
    readonly name: string,
  ) {
    this.endpoint = new RepositoryEndpoint(context, registry, name);
    this.uploads = new BlobUploader(this.endpoint, this);
    this.referrersOf = new Referrers(this.endpoint, this);
  }

  // ---- manifests ----

  /** HEAD a tag or digest: the manifest's descriptor without its body (GET when HEAD gives no digest). */
  resolve(reference: string, options: ReadOptions = {}): Promise<Descriptor> {
    const what = this.endpoint.describe('manifest', reference);
    return this.endpoint.transport.read(what, options.signal, async (signal) => {
      const res = await this.endpoint.send({
        method: 'HEAD',
        path: `/v2/${this.name}/manifests/${reference}`,
        headers: { accept: ACCEPT },
        ok: [200],
        what,
        signal,
      });
      await discardBody(res);
      const digest = header(res, 'docker-content-digest');
      const size = Number(header(res, 'content-length'));
      const mediaType = header(res, 'content-type')?.split(';')[0]?.trim();
      if (!digest || !isDigest(digest) || !Number.isSafeInteger(size) || !mediaType) {
        return (await this.fetchManifestOnce(reference, signal)).descriptor;
      }
      if (isDigest(reference) && digest !== reference) throw digestMismatch(what, reference, digest);
      return { mediaType, digest, size };
    });
  }

  /**
   * GET a manifest by tag, digest or descriptor. The bytes are checked against the digest asked for (or the
   * registry's Docker-Content-Digest, for a tag); the returned descriptor carries the computed digest.
   */
  fetchManifest(reference: string | Descriptor, options: ReadOptions = {}): Promise<FetchedManifest> {
    const ref = typeof reference === 'string' ? reference : reference.digest;
    return this.endpoint.transport.read(this.endpoint.describe('manifest', ref), options.signal, (signal) =>
      this.fetchManifestOnce(reference, signal),
    );
  }

  private async fetchManifestOnce(
    reference: string | Descriptor,
    signal: AbortSignal,
  ): Promise<FetchedManifest> {
    const ref = typeof reference === 'string' ? reference : reference.digest;
    const what = this.endpoint.describe('manifest', ref);
    const res = await this.endpoint.send({
      method: 'GET',
      path: `/v2/${this.name}/manifests/${ref}`,
      headers: { accept: ACCEPT },
      ok: [200],
      what,
      signal,
    });
    const declared = Number(header(res, 'content-length'));
    if (declared > MAX_MANIFEST_BYTES) {
      abandon(res.body);
      throw new RegistryError(
        'REGISTRY_INVALID_MANIFEST',
        `${what}: ${declared} bytes is more than the 4 MiB a manifest may have`,
      );
    }
    let bytes: Uint8Array;
    try {
      bytes = await readLimited(res.body, MAX_MANIFEST_BYTES + 1);
    } catch (error) {
      throw bodyFailure(error, 'GET', res.url);
    }
    if (bytes.length > MAX_MANIFEST_BYTES) {
      throw new RegistryError('REGISTRY_INVALID_MANIFEST', `${what}: the manifest is larger than 4 MiB`);
    }
    const expected = isDigest(ref) ? ref : header(res, 'docker-content-digest');
    const digest = digestOf(bytes, expected && isDigest(expected) ? expected : undefined);
    if (expected && isDigest(expected) && digest !== expected) throw digestMismatch(what, expected, digest);
    if (typeof reference !== 'string' && reference.size !== bytes.length) {
      throw new RegistryError(
        'REGISTRY_SIZE_MISMATCH',
        `${what}: the descriptor says ${reference.size} bytes, got ${bytes.length}`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as Manifest;
    } catch {
      throw new RegistryError('REGISTRY_INVALID_MANIFEST', `${what}: the manifest is not JSON`);
    }
    if (
      typeof manifest !== 'object' ||
      manifest === null ||
      (manifest as { schemaVersion?: unknown }).schemaVersion !== 2
    ) {
      throw new RegistryError(
        'REGISTRY_INVALID_MANIFEST',
        `${what}: not a schemaVersion 2 manifest (schema 1 is not supported)`,
      );
    }
    const mediaType =
      manifest.mediaType ??
      header(res, 'content-type')?.split(';')[0]?.trim() ??
      (isImageIndex(manifest) ? MediaType.OciIndex : MediaType.OciManifest);
    return { descriptor: { mediaType, digest, size: bytes.length }, bytes, manifest };
  }

  /**
   * The image manifest for one platform: follows an index (OCI or Docker list) to the entry for `platform`
   * (default: this host). `index` is set when the reference named an index.
   */
  async fetchImageManifest(
    reference: string | Descriptor,
    platform?: Platform,
    options: ReadOptions = {},
  ): Promise<FetchedManifest & { index?: FetchedManifest<ImageIndex> }> {
    const first = await this.fetchManifest(reference, options);
    if (!isImageIndex(first.manifest)) return first;
    const index = first as FetchedManifest<ImageIndex>;
    const chosen = selectPlatform(index.manifest, platform);
    const image = await this.fetchManifest(chosen, options);
    if (isImageIndex(image.manifest)) {
      throw new RegistryError(
        'REGISTRY_INVALID_MANIFEST',
        `${this.endpoint.describe('manifest', chosen.digest)}: an index inside an index`,
      );
    }
    return { ...image, index };
  }

  /**
   * PUT a manifest under a tag (or under its own digest when no tag is given). A manifest with a `subject`
   * pushed to a registry that does not answer `OCI-Subject` is also added to the referrers fallback index.
   */
  async pushManifest(
    manifest: Manifest | Uint8Array,
    options: PushManifestOptions = {},
  ): Promise<Descriptor> {
    const bytes = manifest instanceof Uint8Array ? manifest : Buffer.from(JSON.stringify(manifest));
    let parsed: Manifest;
    try {
      parsed =
        manifest instanceof Uint8Array
          ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as Manifest)
          : manifest;
    } catch {
      throw new RegistryError('REGISTRY_INVALID_MANIFEST', 'pushManifest: the bytes are not JSON');
    }
    const mediaType =
      options.mediaType ??
      parsed.mediaType ??
      (isImageIndex(parsed) ? MediaType.OciIndex : MediaType.OciManifest);
    const digest = digestOf(bytes);
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    const ref = options.tag ?? digest;
    const what = this.endpoint.describe('push manifest', ref);
    return this.endpoint.transport.write(what, options.signal, async (signal) => {
      const res = await this.endpoint.send({
        scopes: this.endpoint.scopes(true),
        method: 'PUT',
        path: `/v2/${this.name}/manifests/${ref}`,
        headers: { 'content-type': mediaType },
        body: bytes,
        ok: [200, 201, 202],
        what,
        signal,
      });
      await discardBody(res);
      const stored = header(res, 'docker-content-digest');
      if (stored && isDigest(stored) && stored.startsWith('sha256:') && stored !== digest) {
        throw digestMismatch(what, digest, stored);
      }
      if (parsed.subject && !header(res, 'oci-subject')) {
        const referrer = referrerDescriptor(parsed, descriptor);
        await this.referrersOf.addToFallback(parsed.subject.digest, referrer, { signal });
      }
      return descriptor;
    });
  }

  // ---- referrers ----

  /**
   * Referrers of a manifest: the referrers API (`OCI-Filters-Applied` honoured, else filtered here,
   * pages followed), or on 404 the `sha256-<hex>` tag schema.
   */
  referrers(subjectDigest: string, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    return this.referrersOf.list(subjectDigest, options);
  }

  // ---- blobs ----

  /** HEAD a blob: its descriptor when present, undefined when the registry does not have it. */
  async blobExists(digest: string, options: ReadOptions = {}): Promise<Descriptor | undefined> {
    assertDigest(digest);
    const what = this.endpoint.describe('blob', digest);
    const res = await this.endpoint.transport.read(what, options.signal, async (signal) => {
      const answer = await this.endpoint.send({
        method: 'HEAD',
        path: `/v2/${this.name}/blobs/${digest}`,
        ok: [200, 404],
        what,
        signal,
      });
      await discardBody(answer);
      return answer;
    });
    if (res.status === 404) return undefined;
    return { mediaType: MediaType.OctetStream, digest, size: Number(header(res, 'content-length') ?? -1) };
  }

  /**
   * Streams a blob. The stream fails with DigestMismatchError (or REGISTRY_SIZE_MISMATCH when the descriptor has a
   * size) instead of ending when the bytes are not the blob asked for. `timeouts.readMs` bounds the wait for
   * the headers; the body, however long, only `timeouts.bodyStallMs` between chunks (and the signal).
   */
  async fetchBlob(blob: string | Descriptor, options: ReadOptions = {}): Promise<Readable> {
    const digest = typeof blob === 'string' ? blob : blob.digest;
    assertDigest(digest);
    const what = this.endpoint.describe('blob', digest);
    const deadline = this.endpoint.transport.deadline(what, options.signal);
    let res: HttpResponse;
    try {
      res = await this.endpoint.send({
        method: 'GET',
        path: `/v2/${this.name}/blobs/${digest}`,
        ok: [200],
        what,
        signal: deadline.signal,
      });
    } catch (error) {
      deadline.dispose();
      throw error;
    }
    deadline.stopClock();
    const verifier = createVerifyingStream(what, digest, typeof blob === 'string' ? undefined : blob.size);
    const body = res.body as unknown as Readable;
    body.on('error', (error) => verifier.destroy(mapFailure(error, 'GET', res.url)));
    verifier.on('close', () => {
      abandon(body);
      deadline.dispose();
    });
    body.pipe(verifier);
    return verifier;
  }

  /** A whole blob in memory, verified before it is returned. */
  async fetchBlobBytes(blob: string | Descriptor, options: ReadOptions = {}): Promise<Uint8Array> {
    const stream = await this.fetchBlob(blob, options);
    const chunks: Buffer[] = [];
    for await (const chunk of stream) chunks.push(chunk as Buffer);
    return Buffer.concat(chunks);
  }

  /**
   * Bytes `[start, endExclusive)` of a blob with one Range GET (checks 206 and Content-Range). A registry
   * that answers 200 instead gets the slice cut from the streaming full body, and is remembered
   * (RegistryClient.supportsRanges). Ranges past the blob end are clamped like Uint8Array.slice.
   */
  async fetchBlobRange(
    digest: string,
    start: number,
    endExclusive: number,
    options: ReadOptions = {},
  ): Promise<Uint8Array> {
    assertDigest(digest);
    assertRange(start, endExclusive);
    if (start === endExclusive) return new Uint8Array(0);
    const what = `${this.endpoint.describe('blob', digest)} bytes ${start}-${endExclusive - 1}`;
    return this.endpoint.transport.read(what, options.signal, (signal) =>
      this.fetchBlobRangeOnce(digest, start, endExclusive, what, signal),
    );
  }

  private async fetchBlobRangeOnce(
    digest: string,
    start: number,
    endExclusive: number,
    what: string,
    signal: AbortSignal,
  ): Promise<Uint8Array> {
    const res = await this.endpoint.send({
      method: 'GET',
      path: `/v2/${this.name}/blobs/${digest}`,
      headers: { range: `bytes=${start}-${endExclusive - 1}` },
      ok: [200, 206],
      what,
      signal,
    });
    try {
      const contentLength = header(res, 'content-length');
      if (res.status === 200) {
        this.endpoint.context.noRangeHosts.add(this.registry);
        return await sliceFullBody(
          res.body,
          start,
          endExclusive,
          contentLength ? Number(contentLength) : undefined,
          what,
        );
      }
      const range = parseContentRange(header(res, 'content-range'));
      const clampedAtEnd =
        range?.total !== undefined && range.last === range.total - 1 && range.last < endExclusive - 1;
      if (!range || range.first !== start || (range.last !== endExclusive - 1 && !clampedAtEnd)) {
        abandon(res.body);
        throw new RegistryError(
          'REGISTRY_PROTOCOL',
          `${what}: the registry answered 206 with Content-Range "${header(res, 'content-range') ?? ''}", not the range asked for`,
        );
      }
      return await readExactly(res.body, range.last - range.first + 1, what);
    } catch (error) {
      throw bodyFailure(error, 'GET', res.url);
    }
  }

  /** A BlobRangeReader over one blob of this repository. */
  blobReader(descriptor: Descriptor): BlobRangeReader {
    assertDigest(descriptor.digest);
    return {
      size: descriptor.size,
      readRange: (start, end, options) => this.fetchBlobRange(descriptor.digest, start, end, options),
    };
  }

  /** Cross-repository mount of a blob from `fromRepository` (same registry): true when the registry did it. */
  mountBlob(
    descriptor: Descriptor | string,
    fromRepository: string,
    options: WriteOptions = {},
  ): Promise<boolean> {
    return this.uploads.mountBlob(descriptor, fromRepository, options);
  }

  /**
   * Pushes a blob unless the registry already has it (HEAD). Tries `mountFrom` repositories first; blobs up
   * to the monolithic limit go in one PUT, larger ones (and streams) in PATCH chunks.
   */
  pushBlob(content: Uint8Array | BlobSource, options: PushBlobOptions = {}): Promise<Descriptor> {
    return this.uploads.pushBlob(content, options);
  }

  // ---- tags ----

  /** All tags of the repository (pages followed). */
  async tags(options: ReadOptions = {}): Promise<string[]> {
    const what = `tags of ${this.registry}/${this.name}`;
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.name}/tags/list`;
    for (let page = 0; path && page < 1000; page++) {
      const pagePath: string = path;
      const { res, text } = await this.endpoint.transport.read(what, options.signal, async (signal) => {
        const answer = await this.endpoint.send({ method: 'GET', path: pagePath, ok: [200], what, signal });
        return { res: answer, text: (await readLimited(answer.body, 16 << 20)).toString('utf8') };
      });
      try {
        tags.push(...((JSON.parse(text) as { tags?: string[] | null }).tags ?? []));
      } catch {
        throw new RegistryError('REGISTRY_PROTOCOL', `${what}: the answer is not JSON`);
      }
      path = nextLink(header(res, 'link'), res.url);
    }
    return tags;
  }
}
