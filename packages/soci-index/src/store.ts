/**
 * The local content store: an OCI image layout (https://github.com/opencontainers/image-spec,
 * image-layout.md) at a root directory. Blobs are written to a temporary file, synced,
 * checked against their digest and renamed into place, so a crash leaves either the whole
 * blob or nothing under blobs/. index.json lists the SOCI indexes with the image they
 * belong to; it is replaced the same way, under a lock file, and only after every blob
 * it points to is in place.
 */

import { randomBytes } from 'node:crypto';
import { constants as fsConstants } from 'node:fs';
import { mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf, isSha256Digest } from '@soci-ts/oci-referrers';
import { type AbortOptions, abortable } from './abort.js';
import { checkIndexSubject } from './binding.js';
import { ANNOTATION_IMAGE_MANIFEST_DIGEST, artifactTypeOf, EMPTY_CONFIG_BYTES } from './constants.js';
import { SociIndexError } from './errors.js';

import { parseIndexManifest, type SociIndex } from './index-manifest.js';

import { type Descriptor, type ImageIndex, OCI_INDEX, OCI_MANIFEST, type Platform } from './oci.js';

/** Annotation on index.json entries: the image reference the index was built from. */
export const ANNOTATION_IMAGE_REF = 'dev.soci-ts.image-ref';
/** Annotation on index.json entries: when the index was stored (RFC 3339). */
export const ANNOTATION_CREATED = 'dev.soci-ts.created';

const LOCK_WAIT_MS = 10_000;
const LOCK_STALE_MS = 60_000;

/** A SOCI index recorded in the store. */
export interface StoredIndex {
  digest: string;
  size: number;
  artifactType: string;
  imageManifestDigest: string;
  imageRef: string;
  platform?: Platform;
  created: string;
}

export class LocalStore {
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(readonly root: string) {}

  /** Opens (creating when missing) the store at `root`. */
  static async open(root: string): Promise<LocalStore> {
    const store = new LocalStore(root);
    await mkdir(join(root, 'blobs', 'sha256'), { recursive: true });
    await mkdir(join(root, 'ingest'), { recursive: true });
    const layoutFile = join(root, 'oci-layout');
    if (!(await exists(layoutFile))) {
      await store.writeFileAtomic(layoutFile, new TextEncoder().encode('{"imageLayoutVersion":"1.0.0"}'));
    }
    if (!(await exists(join(root, 'index.json')))) {
      await store.writeIndexJson({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [] });
    }
    return store;
  }

  blobPath(digest: string): string {
    if (!isSha256Digest(digest)) {
      throw new SociIndexError(
        'INDEX_INVALID_DIGEST',
        `"${digest}" is not a sha256 digest (sha256:<64 hex digits>)`,
      );
    }
    return join(this.root, 'blobs', 'sha256', digest.slice('sha256:'.length));
  }

  async has(digest: string): Promise<boolean> {
    return exists(this.blobPath(digest));
  }

  /** Reads a blob and checks it against its digest. */
  readBlob(digest: string, options: AbortOptions = {}): Promise<Uint8Array> {
    return abortable(options.signal, `reading ${digest} from the local store`, () =>
      this.readChecked(digest, options),
    );
  }

  private async readChecked(digest: string, { signal }: AbortOptions): Promise<Uint8Array> {
    let bytes: Uint8Array;
    try {
      bytes = await readFile(this.blobPath(digest), signal ? { signal } : {});
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
        throw new SociIndexError('INDEX_NOT_FOUND', `${digest} is not in the local store at ${this.root}`);
      }
      throw err;
    }
    if (digestOf(bytes) !== digest) {
      throw new SociIndexError(
        'INDEX_STORE_CORRUPT',
        `blob ${digest} in ${this.root} is corrupt (content does not match its digest); ` +
          'remove the index that uses it with `soci index rm` and create it again',
      );
    }
    return bytes;
  }

  /** Stores a blob (no-op when already present) and returns its digest and size. */
  async writeBlob(bytes: Uint8Array, expectedDigest?: string): Promise<{ digest: string; size: number }> {
    const digest = digestOf(bytes);
    if (expectedDigest !== undefined && expectedDigest !== digest) {
      throw new SociIndexError(
        'INDEX_DIGEST_MISMATCH',
        `content has digest ${digest}, expected ${expectedDigest}`,
      );
    }
    const path = this.blobPath(digest);
    if (!(await exists(path))) await this.writeFileAtomic(path, bytes);
    return { digest, size: bytes.length };
  }

  async readSociIndex(digest: string, options: AbortOptions = {}): Promise<SociIndex> {
    return parseIndexManifest(await this.readBlob(digest, options));
  }

  async listIndexes(): Promise<StoredIndex[]> {
    const index = await this.readIndexJson();
    return index.manifests.map(toStoredIndex);
  }

  /**
   * Stores a SOCI index: its zTOC/prefetch blobs and config first, then the manifest, then
   * its entry in index.json. An entry for the same index digest and image is replaced.
   */
  async addIndex(entry: {
    manifestBytes: Uint8Array;
    blobs: Uint8Array[];
    imageManifestDigest: string;
    imageRef: string;
    platform?: Platform;
  }): Promise<StoredIndex> {
    for (const blob of entry.blobs) await this.writeBlob(blob);
    await this.writeBlob(EMPTY_CONFIG_BYTES);
    const parsed = parseIndexManifest(entry.manifestBytes);
    checkIndexSubject(parsed, entry.imageManifestDigest, digestOf(entry.manifestBytes));
    const { digest, size } = await this.writeBlob(entry.manifestBytes);
    const descriptor: Descriptor = {
      mediaType: OCI_MANIFEST,
      digest,
      size,
      artifactType: artifactTypeOf(parsed.version),
      ...(entry.platform ? { platform: entry.platform } : {}),
      annotations: {
        [ANNOTATION_IMAGE_MANIFEST_DIGEST]: entry.imageManifestDigest,
        [ANNOTATION_IMAGE_REF]: entry.imageRef,
        [ANNOTATION_CREATED]: new Date().toISOString(),
      },
    };
    await this.updateIndexJson((manifests) => [
      ...manifests.filter(
        (d) =>
          !(
            d.digest === digest &&
            d.annotations?.[ANNOTATION_IMAGE_MANIFEST_DIGEST] === entry.imageManifestDigest
          ),
      ),
      descriptor,
    ]);
    return toStoredIndex(descriptor);
  }

  /**
   * Removes index entries and then every blob no remaining index refers to.
   * Returns the entries removed.
   */
  async removeIndexes(match: (entry: StoredIndex) => boolean): Promise<StoredIndex[]> {
    const removed: StoredIndex[] = [];
    await this.updateIndexJson((manifests) =>
      manifests.filter((d) => {
        const hit = match(toStoredIndex(d));
        if (hit) removed.push(toStoredIndex(d));
        return !hit;
      }),
    );
    await this.collectGarbage();
    return removed;
  }

  /** Deletes blobs that no index entry reaches, and stale temporary files. */
  async collectGarbage(): Promise<void> {
    const live = new Set<string>([digestOf(EMPTY_CONFIG_BYTES)]);
    for (const entry of await this.listIndexes()) {
      live.add(entry.digest);
      try {
        const idx = await this.readSociIndex(entry.digest);
        for (const r of [...idx.ztocs, ...idx.prefetches]) live.add(r.digest);
      } catch {
        // A corrupt index keeps its entry; its blobs may be collected, which is fine:
        // the index has to be rebuilt anyway.
      }
    }
    const dir = join(this.root, 'blobs', 'sha256');
    for (const name of await readdir(dir)) {
      if (!live.has(`sha256:${name}`)) await rm(join(dir, name), { force: true });
    }
    const ingest = join(this.root, 'ingest');
    for (const name of await readdir(ingest)) {
      const s = await stat(join(ingest, name)).catch(() => undefined);
      if (s && Date.now() - s.mtimeMs > LOCK_STALE_MS) await rm(join(ingest, name), { force: true });
    }
  }

  private async readIndexJson(): Promise<ImageIndex> {
    const path = join(this.root, 'index.json');
    let value: unknown;
    try {
      value = JSON.parse(await readFile(path, 'utf8'));
    } catch (err) {
      throw new SociIndexError(
        'INDEX_STORE_CORRUPT',
        `cannot read ${path} (${(err as Error).message}); move the store aside or remove it and create the indexes again`,
        { cause: err },
      );
    }
    const index = value as ImageIndex;
    if (!index || !Array.isArray(index.manifests)) {
      throw new SociIndexError(
        'INDEX_STORE_CORRUPT',
        `${path} is not an OCI image index; remove it to start a new store`,
      );
    }
    return index;
  }

  private async writeIndexJson(index: ImageIndex): Promise<void> {
    await this.writeFileAtomic(
      join(this.root, 'index.json'),
      new TextEncoder().encode(JSON.stringify(index, null, 2)),
    );
  }

  /** Read-modify-write of index.json, serialized in this process and across processes. */
  private updateIndexJson(change: (manifests: Descriptor[]) => Descriptor[]): Promise<void> {
    const run = async () => {
      const release = await this.lock();
      try {
        const index = await this.readIndexJson();
        await this.writeIndexJson({ ...index, manifests: change(index.manifests) });
      } finally {
        await release();
      }
    };
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async lock(): Promise<() => Promise<void>> {
    const path = join(this.root, 'index.json.lock');
    const deadline = Date.now() + LOCK_WAIT_MS;
    for (;;) {
      try {
        const handle = await open(path, fsConstants.O_CREAT | fsConstants.O_EXCL | fsConstants.O_WRONLY);
        await handle.close();
        return () => rm(path, { force: true });
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
        const s = await stat(path).catch(() => undefined);
        // A lock left by a crashed process is taken over after a while.
        if (s && Date.now() - s.mtimeMs > LOCK_STALE_MS) await rm(path, { force: true });
        else if (Date.now() > deadline) {
          throw new SociIndexError(
            'INDEX_STORE_LOCKED',
            `the store at ${this.root} is locked by another soci process (${path}); retry, or delete the lock file if no soci process runs`,
          );
        } else await new Promise((r) => setTimeout(r, 50));
      }
    }
  }

  private async writeFileAtomic(path: string, bytes: Uint8Array): Promise<void> {
    const tmp = join(this.root, 'ingest', `${randomBytes(8).toString('hex')}.tmp`);
    try {
      const handle = await open(tmp, 'w', 0o644);
      try {
        await handle.writeFile(bytes);
        await handle.sync();
      } finally {
        await handle.close();
      }
      await rename(tmp, path);
    } catch (err) {
      await rm(tmp, { force: true });
      throw err;
    }
    await syncDir(join(path, '..'));
  }
}

function toStoredIndex(d: Descriptor): StoredIndex {
  return {
    digest: d.digest,
    size: d.size,
    artifactType: d.artifactType ?? '',
    imageManifestDigest: d.annotations?.[ANNOTATION_IMAGE_MANIFEST_DIGEST] ?? '',
    imageRef: d.annotations?.[ANNOTATION_IMAGE_REF] ?? '',
    ...(d.platform ? { platform: d.platform } : {}),
    created: d.annotations?.[ANNOTATION_CREATED] ?? '',
  };
}

async function exists(path: string): Promise<boolean> {
  return stat(path).then(
    () => true,
    () => false,
  );
}

/** Makes a rename durable: the directory entry itself is synced. */
async function syncDir(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}
