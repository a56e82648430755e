import type { Readable } from 'node:stream';
import {
  assertRange,
  type BlobRangeReader,
  parseContentRange,
  readExactly,
  sliceFullBody,
} from './blob-range.js';
import { assertDigest, createVerifyingStream, digestOf } from './digest.js';
import { DigestMismatchError, RegistryError } from './errors.js';
import { selectPlatform } from './platform.js';
import { isDigest } from './reference.js';
import {
  abandon,
  bodyFailure,
  type HttpRequest,
  type HttpResponse,
  header,
  mapFailure,
  readLimited,
  type Transport,
} from './transport.js';
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

/** A blob to push that is too big to hold in memory: its bytes as a stream, with digest and size known. */
export interface BlobSource {
  stream: AsyncIterable<Uint8Array>;
  digest: string;
  size: number;
}

export interface PushBlobOptions {
  mediaType?: string;
  /** Try a cross-repository mount from these repositories (same registry) before uploading. */
  mountFrom?: string[];
}

/** Options of every read. */
export interface ReadOptions {
  /** Aborts the read (its retries and, for a blob stream, the stream) with an ABORTED RegistryError. */
  signal?: AbortSignal;
}

export interface ReferrersOptions extends ReadOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
  /** On registries without the referrers API, read the `sha256-<hex>` tag index (default true). */
  tagFallback?: boolean;
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

const MAX_MANIFEST_BYTES = 4 * 1024 * 1024;
const ACCEPT = MANIFEST_MEDIA_TYPES.join(', ');

/** Fallback tag of the referrers tag schema: `sha256:<hex>` -> `sha256-<hex>` (at most 128 characters). */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-').slice(0, 128);
}

/** The descriptor that lists a manifest as a referrer (artifactType: its own, else its config's). */
export function referrerDescriptor(manifest: Manifest, descriptor: Descriptor): Descriptor {
  const artifactType =
    manifest.artifactType ?? (isImageIndex(manifest) ? undefined : manifest.config?.mediaType);
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(artifactType ? { artifactType } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
}

/**
 * One repository of a registry (`127.0.0.1:5000` + `library/alpine`). All methods throw RegistryError.
 */
export class Repository {
  constructor(
    private readonly context: RepositoryContext,
    readonly registry: string,
    readonly name: string,
  ) {}

  private get transport(): Transport {
    return this.context.transport;
  }

  private scopes(push = false, extraPull: string[] = []): string[] {
    return [
      `repository:${this.name}:${push ? 'pull,push' : 'pull'}`,
      ...extraPull.map((r) => `repository:${r}:pull`),
    ];
  }

  private send(req: Omit<HttpRequest, 'registry' | 'scopes'> & { scopes?: string[] }): Promise<HttpResponse> {
    return this.transport.send({ registry: this.registry, scopes: this.scopes(), ...req });
  }

  private describe(what: string, reference: string): string {
    const sep = isDigest(reference) ? '@' : ':';
    return `${what} ${this.registry}/${this.name}${sep}${reference}`;
  }

  // ---- manifests ----

  /** HEAD a tag or digest: the manifest's descriptor without its body (GET when HEAD gives no digest). */
  resolve(reference: string, options: ReadOptions = {}): Promise<Descriptor> {
    const what = this.describe('manifest', reference);
    return this.transport.read(what, options.signal, async (signal) => {
      const res = await this.send({
        method: 'HEAD',
        path: `/v2/${this.name}/manifests/${reference}`,
        headers: { accept: ACCEPT },
        ok: [200],
        what,
        signal,
      });
      await res.body.dump().catch(() => undefined);
      const digest = header(res, 'docker-content-digest');
      const size = Number(header(res, 'content-length'));
      const mediaType = header(res, 'content-type')?.split(';')[0]?.trim();
      if (!digest || !isDigest(digest) || !Number.isSafeInteger(size) || !mediaType) {
        return (await this.fetchManifestOnce(reference, signal)).descriptor;
      }
      if (isDigest(reference) && digest !== reference) throw new DigestMismatchError(what, reference, digest);
      return { mediaType, digest, size };
    });
  }

  /**
   * GET a manifest by tag, digest or descriptor. The bytes are checked against the digest asked for (or the
   * registry's Docker-Content-Digest, for a tag); the returned descriptor carries the computed digest.
   */
  fetchManifest(reference: string | Descriptor, options: ReadOptions = {}): Promise<FetchedManifest> {
    const ref = typeof reference === 'string' ? reference : reference.digest;
    return this.transport.read(this.describe('manifest', ref), options.signal, (signal) =>
      this.fetchManifestOnce(reference, signal),
    );
  }

  private async fetchManifestOnce(
    reference: string | Descriptor,
    signal: AbortSignal,
  ): Promise<FetchedManifest> {
    const ref = typeof reference === 'string' ? reference : reference.digest;
    const what = this.describe('manifest', ref);
    const res = await this.send({
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
        'INVALID_MANIFEST',
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
      throw new RegistryError('INVALID_MANIFEST', `${what}: the manifest is larger than 4 MiB`);
    }
    const expected = isDigest(ref) ? ref : header(res, 'docker-content-digest');
    const digest = digestOf(bytes, expected && isDigest(expected) ? expected : undefined);
    if (expected && isDigest(expected) && digest !== expected)
      throw new DigestMismatchError(what, expected, digest);
    if (typeof reference !== 'string' && reference.size !== bytes.length) {
      throw new RegistryError(
        'SIZE_MISMATCH',
        `${what}: the descriptor says ${reference.size} bytes, got ${bytes.length}`,
      );
    }
    let manifest: Manifest;
    try {
      manifest = JSON.parse(Buffer.from(bytes).toString('utf8')) as Manifest;
    } catch {
      throw new RegistryError('INVALID_MANIFEST', `${what}: the manifest is not JSON`);
    }
    if (
      typeof manifest !== 'object' ||
      manifest === null ||
      (manifest as { schemaVersion?: unknown }).schemaVersion !== 2
    ) {
      throw new RegistryError(
        'INVALID_MANIFEST',
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
        'INVALID_MANIFEST',
        `${this.describe('manifest', chosen.digest)}: an index inside an index`,
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
    options: { tag?: string; mediaType?: string } = {},
  ): Promise<Descriptor> {
    const bytes = manifest instanceof Uint8Array ? manifest : Buffer.from(JSON.stringify(manifest));
    let parsed: Manifest;
    try {
      parsed =
        manifest instanceof Uint8Array
          ? (JSON.parse(Buffer.from(bytes).toString('utf8')) as Manifest)
          : manifest;
    } catch {
      throw new RegistryError('INVALID_MANIFEST', 'pushManifest: the bytes are not JSON');
    }
    const mediaType =
      options.mediaType ??
      parsed.mediaType ??
      (isImageIndex(parsed) ? MediaType.OciIndex : MediaType.OciManifest);
    const digest = digestOf(bytes);
    const descriptor: Descriptor = { mediaType, digest, size: bytes.length };
    const ref = options.tag ?? digest;
    const what = this.describe('push manifest', ref);
    const res = await this.transport.send({
      registry: this.registry,
      scopes: this.scopes(true),
      method: 'PUT',
      path: `/v2/${this.name}/manifests/${ref}`,
      headers: { 'content-type': mediaType },
      body: bytes,
      ok: [200, 201, 202],
      what,
    });
    await res.body.dump().catch(() => undefined);
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored.startsWith('sha256:') && stored !== digest) {
      throw new DigestMismatchError(what, digest, stored);
    }
    if (parsed.subject && !header(res, 'oci-subject')) {
      await this.addToReferrersFallback(parsed.subject.digest, referrerDescriptor(parsed, descriptor));
    }
    return descriptor;
  }

  /** Read-modify-write of the `sha256-<hex>` fallback index: adds `referrer` unless already listed. */
  private async addToReferrersFallback(subjectDigest: string, referrer: Descriptor): Promise<void> {
    const current = await this.fetchFallbackIndex(subjectDigest);
    if (current.manifests.some((d) => d.digest === referrer.digest)) return;
    const next: ImageIndex = { ...current, manifests: [...current.manifests, referrer] };
    await this.pushManifest(next, { tag: referrersTag(subjectDigest), mediaType: MediaType.OciIndex });
  }

  private async fetchFallbackIndex(subjectDigest: string, options: ReadOptions = {}): Promise<ImageIndex> {
    try {
      const { manifest } = await this.fetchManifest(referrersTag(subjectDigest), options);
      if (!isImageIndex(manifest)) {
        throw new RegistryError(
          'INVALID_MANIFEST',
          `${this.describe('referrers tag', referrersTag(subjectDigest))} is not an image index; delete that tag`,
        );
      }
      return manifest;
    } catch (error) {
      if (
        error instanceof RegistryError &&
        (error.code === 'MANIFEST_UNKNOWN' || error.code === 'NAME_UNKNOWN')
      ) {
        return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      }
      if (error instanceof RegistryError && error.status === 404) {
        return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      }
      throw error;
    }
  }

  // ---- referrers ----

  /**
   * Referrers of a manifest: the referrers API (`OCI-Filters-Applied` honoured, else filtered here,
   * pages followed), or on 404 the `sha256-<hex>` tag schema.
   */
  async referrers(subjectDigest: string, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    assertDigest(subjectDigest);
    const what = this.describe('referrers of', subjectDigest);
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    let path: string | undefined = `/v2/${this.name}/referrers/${subjectDigest}${query}`;
    const found: Descriptor[] = [];
    let filtered = true;
    for (let page = 0; path && page < 100; page++) {
      const pagePath: string = path;
      const answer = await this.transport.read(what, options.signal, async (signal) => {
        const res = await this.send({
          method: 'GET',
          path: pagePath,
          headers: { accept: MediaType.OciIndex },
          ok: [200, 404],
          what,
          signal,
        });
        if (res.status === 404) {
          await res.body.dump().catch(() => undefined);
          return undefined;
        }
        const text = (await readLimited(res.body, MAX_MANIFEST_BYTES)).toString('utf8');
        return { res, text };
      });
      if (!answer) {
        if (page > 0) throw new RegistryError('PROTOCOL', `${what}: a referrers page link gave 404`);
        if (options.tagFallback === false) return [];
        const index = await this.fetchFallbackIndex(subjectDigest, options);
        return filterByArtifactType(index.manifests, options.artifactType);
      }
      const { res, text } = answer;
      let index: ImageIndex;
      try {
        index = JSON.parse(text) as ImageIndex;
      } catch {
        throw new RegistryError('PROTOCOL', `${what}: the referrers answer is not JSON`);
      }
      if (!Array.isArray(index.manifests))
        throw new RegistryError('PROTOCOL', `${what}: the referrers answer is not an index`);
      found.push(...index.manifests);
      const applied = (header(res, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
      if (!applied.includes('artifactType')) filtered = false;
      path = nextLink(header(res, 'link'), res.url);
    }
    return filtered ? found : filterByArtifactType(found, options.artifactType);
  }

  // ---- blobs ----

  /** HEAD a blob: its descriptor when present, undefined when the registry does not have it. */
  async blobExists(digest: string, options: ReadOptions = {}): Promise<Descriptor | undefined> {
    assertDigest(digest);
    const what = this.describe('blob', digest);
    const res = await this.transport.read(what, options.signal, async (signal) => {
      const answer = await this.send({
        method: 'HEAD',
        path: `/v2/${this.name}/blobs/${digest}`,
        ok: [200, 404],
        what,
        signal,
      });
      await answer.body.dump().catch(() => undefined);
      return answer;
    });
    if (res.status === 404) return undefined;
    return { mediaType: MediaType.OctetStream, digest, size: Number(header(res, 'content-length') ?? -1) };
  }

  /**
   * Streams a blob. The stream fails with DigestMismatchError (or SIZE_MISMATCH when the descriptor has a
   * size) instead of ending when the bytes are not the blob asked for. `timeouts.readMs` bounds the wait for
   * the headers; the body, however long, only `timeouts.bodyStallMs` between chunks (and the signal).
   */
  async fetchBlob(blob: string | Descriptor, options: ReadOptions = {}): Promise<Readable> {
    const digest = typeof blob === 'string' ? blob : blob.digest;
    assertDigest(digest);
    const what = this.describe('blob', digest);
    const deadline = this.transport.deadline(what, options.signal);
    let res: HttpResponse;
    try {
      res = await this.send({
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
    const what = `${this.describe('blob', digest)} bytes ${start}-${endExclusive - 1}`;
    return this.transport.read(what, options.signal, (signal) =>
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
    const res = await this.send({
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
        this.context.noRangeHosts.add(this.registry);
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
          'PROTOCOL',
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
  async mountBlob(descriptor: Descriptor | string, fromRepository: string): Promise<boolean> {
    const digest = typeof descriptor === 'string' ? descriptor : descriptor.digest;
    const session = await this.startUpload(digest, fromRepository);
    if (session === 'mounted') return true;
    await this.cancelUpload(session);
    return false;
  }

  /**
   * Pushes a blob unless the registry already has it (HEAD). Tries `mountFrom` repositories first; blobs up
   * to the monolithic limit go in one PUT, larger ones (and streams) in PATCH chunks.
   */
  async pushBlob(content: Uint8Array | BlobSource, options: PushBlobOptions = {}): Promise<Descriptor> {
    const isBytes = content instanceof Uint8Array;
    const digest = isBytes ? digestOf(content) : content.digest;
    assertDigest(digest);
    const size = isBytes ? content.length : content.size;
    const descriptor: Descriptor = { mediaType: options.mediaType ?? MediaType.OctetStream, digest, size };
    if (await this.blobExists(digest)) return descriptor;
    let session: string | 'mounted' | undefined;
    for (const from of options.mountFrom ?? []) {
      if (session) await this.cancelUpload(session);
      session = await this.startUpload(digest, from);
      if (session === 'mounted') return descriptor;
    }
    session ??= await this.startUpload(digest);
    const what = this.describe('push blob', digest);
    let location = session;
    if (isBytes && size <= this.context.monolithicUploadLimit) {
      await this.finishUpload(location, digest, content, what);
      return descriptor;
    }
    let offset = 0;
    for await (const chunk of chunked(isBytes ? [content] : content.stream, this.context.chunkSize)) {
      const res = await this.transport.send({
        registry: this.registry,
        scopes: this.scopes(true),
        method: 'PATCH',
        path: location,
        headers: {
          'content-type': 'application/octet-stream',
          'content-range': `${offset}-${offset + chunk.length - 1}`,
        },
        body: chunk,
        ok: [202],
        what,
      });
      await res.body.dump().catch(() => undefined);
      location = header(res, 'location') ?? location;
      offset += chunk.length;
    }
    if (offset !== size) {
      await this.cancelUpload(location);
      throw new RegistryError(
        'SIZE_MISMATCH',
        `${what}: the stream gave ${offset} bytes, the descriptor says ${size}`,
      );
    }
    await this.finishUpload(location, digest, undefined, what);
    return descriptor;
  }

  /** POST an upload (or a mount): the upload Location, or 'mounted'. */
  private async startUpload(digest: string, mountFrom?: string): Promise<string | 'mounted'> {
    const query = mountFrom
      ? `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(mountFrom)}`
      : '';
    const res = await this.transport.send({
      registry: this.registry,
      scopes: this.scopes(true, mountFrom ? [mountFrom] : []),
      method: 'POST',
      path: `/v2/${this.name}/blobs/uploads/${query}`,
      ok: [201, 202],
      what: this.describe(mountFrom ? `mount blob from ${mountFrom}` : 'start upload of blob', digest),
    });
    await res.body.dump().catch(() => undefined);
    if (res.status === 201) return 'mounted';
    const location = header(res, 'location');
    if (!location)
      throw new RegistryError('PROTOCOL', `${this.describe('upload of blob', digest)}: 202 without Location`);
    return new URL(location, res.url).href;
  }

  private async finishUpload(
    location: string,
    digest: string,
    body: Uint8Array | undefined,
    what: string,
  ): Promise<void> {
    const url = new URL(location);
    url.searchParams.set('digest', digest);
    const res = await this.transport.send({
      registry: this.registry,
      scopes: this.scopes(true),
      method: 'PUT',
      path: url.href,
      headers: { 'content-type': 'application/octet-stream' },
      body: body ?? new Uint8Array(0),
      ok: [201, 204],
      what,
    });
    await res.body.dump().catch(() => undefined);
    const stored = header(res, 'docker-content-digest');
    if (stored && isDigest(stored) && stored !== digest) throw new DigestMismatchError(what, digest, stored);
  }

  private async cancelUpload(location: string): Promise<void> {
    try {
      const res = await this.transport.send({
        registry: this.registry,
        scopes: this.scopes(true),
        method: 'DELETE',
        path: location,
        ok: [200, 202, 204, 404],
        what: 'cancel upload',
        retry: false,
      });
      await res.body.dump().catch(() => undefined);
    } catch {
      // An abandoned upload session expires on the registry by itself.
    }
  }

  // ---- tags ----

  /** All tags of the repository (pages followed). */
  async tags(options: ReadOptions = {}): Promise<string[]> {
    const what = `tags of ${this.registry}/${this.name}`;
    const tags: string[] = [];
    let path: string | undefined = `/v2/${this.name}/tags/list`;
    for (let page = 0; path && page < 1000; page++) {
      const pagePath: string = path;
      const { res, text } = await this.transport.read(what, options.signal, async (signal) => {
        const answer = await this.send({ method: 'GET', path: pagePath, ok: [200], what, signal });
        return { res: answer, text: (await readLimited(answer.body, 16 << 20)).toString('utf8') };
      });
      try {
        tags.push(...((JSON.parse(text) as { tags?: string[] | null }).tags ?? []));
      } catch {
        throw new RegistryError('PROTOCOL', `${what}: the answer is not JSON`);
      }
      path = nextLink(header(res, 'link'), res.url);
    }
    return tags;
  }
}

function filterByArtifactType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? descriptors.filter((d) => d.artifactType === artifactType) : descriptors;
}

/** `Link: </v2/...?last=x>; rel="next"` -> the next page's URL. */
function nextLink(link: string | undefined, base: URL): string | undefined {
  const m = /<([^>]+)>\s*;\s*rel="?next"?/i.exec(link ?? '');
  return m ? new URL(m[1]!, base).href : undefined;
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
