import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '@soci-ts/oci-referrers';

import { afterEach, beforeEach, describe, expect, it } from 'vitest';

import { buildIndexManifest, LocalStore, type SociIndexError } from '../src/index.js';

let root: string;
beforeEach(async () => {
  root = await mkdtemp(join(tmpdir(), 'soci-store-'));
});
afterEach(() => rm(root, { recursive: true, force: true }));

function sampleIndex(blob: Uint8Array, layer: string) {
  return buildIndexManifest({
    version: 'v2',
    buildToolIdentifier: 'test',
    disableXattrs: false,
    ztocs: [
      {
        digest: digestOf(blob),
        size: blob.length,
        layerDigest: digestOf(Buffer.from(layer)),
        layerMediaType: 'x',
      },
    ],
    prefetches: [],
  });
}

async function codeOf(p: Promise<unknown>): Promise<string | undefined> {
  try {
    await p;
  } catch (err) {
    return (err as SociIndexError).code;
  }
  return undefined;
}

describe('LocalStore', () => {
  it('is an OCI layout; indexes and their blobs are listed, read back and removed with their blobs', async () => {
    const store = await LocalStore.open(root);
    expect(JSON.parse(await readFile(join(root, 'oci-layout'), 'utf8'))).toEqual({
      imageLayoutVersion: '1.0.0',
    });
    const ztoc = new Uint8Array([1, 2, 3]);
    const built = sampleIndex(ztoc, 'a');
    const manifestDigest = digestOf(Buffer.from('image'));
    const entry = await store.addIndex({
      manifestBytes: built.bytes,
      blobs: [ztoc],
      imageManifestDigest: manifestDigest,
      imageRef: 'r/x:1',
    });
    expect(entry.digest).toBe(built.descriptor.digest);
    expect(await store.listIndexes()).toMatchObject([
      { digest: built.descriptor.digest, imageManifestDigest: manifestDigest, imageRef: 'r/x:1' },
    ]);
    expect(await store.readBlob(digestOf(ztoc))).toEqual(Buffer.from(ztoc));
    expect((await store.readSociIndex(entry.digest)).ztocs).toHaveLength(1);
    // Adding it again does not duplicate the entry.
    await store.addIndex({
      manifestBytes: built.bytes,
      blobs: [ztoc],
      imageManifestDigest: manifestDigest,
      imageRef: 'r/x:1',
    });
    expect(await store.listIndexes()).toHaveLength(1);
    await store.removeIndexes((e) => e.digest === entry.digest);
    expect(await store.listIndexes()).toEqual([]);
    expect(await store.has(digestOf(ztoc))).toBe(false);
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
  });

  it('keeps every entry when many indexes are added at once', async () => {
    const store = await LocalStore.open(root);
    const other = await LocalStore.open(root); // a second "process" on the same root
    await Promise.all(
      Array.from({ length: 12 }, (_, i) => {
        const blob = new Uint8Array([i]);
        return (i % 2 ? store : other).addIndex({
          manifestBytes: sampleIndex(blob, `l${i}`).bytes,
          blobs: [blob],
          imageManifestDigest: digestOf(Buffer.from(`img${i}`)),
          imageRef: `r/${i}`,
        });
      }),
    );
    expect(await store.listIndexes()).toHaveLength(12);
  });

  it('reports a corrupt blob and a corrupt index.json with INDEX_STORE_CORRUPT', async () => {
    const store = await LocalStore.open(root);
    const blob = new Uint8Array([9, 9]);
    const { digest } = await store.writeBlob(blob);
    await writeFile(store.blobPath(digest), 'tampered');
    expect(await codeOf(store.readBlob(digest))).toBe('INDEX_STORE_CORRUPT');
    await writeFile(join(root, 'index.json'), '{"manifests": ');
    expect(await codeOf(store.listIndexes())).toBe('INDEX_STORE_CORRUPT');
  });

  it('refuses content that does not match the digest it should have, writing nothing', async () => {
    const store = await LocalStore.open(root);
    expect(await codeOf(store.writeBlob(new Uint8Array([1]), digestOf(new Uint8Array([2]))))).toBe(
      'INDEX_DIGEST_MISMATCH',
    );
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('tells a digest that is not one (INDEX_INVALID_DIGEST) from a blob that is missing (INDEX_NOT_FOUND)', async () => {
    const store = await LocalStore.open(root);
    for (const text of ['latest', 'sha256:abc', `sha512:${'0'.repeat(128)}`, `sha256:../${'0'.repeat(61)}`]) {
      expect(await codeOf(store.readBlob(text)), text).toBe('INDEX_INVALID_DIGEST');
    }
    expect(await codeOf(store.readBlob(digestOf(new Uint8Array([7]))))).toBe('INDEX_NOT_FOUND');
  });

  it('an aborted signal stops a store read with INDEX_ABORTED', async () => {
    const store = await LocalStore.open(root);
    const { digest } = await store.writeBlob(new Uint8Array([5]));
    const controller = new AbortController();
    controller.abort(new Error('stop'));
    expect(await codeOf(store.readBlob(digest, { signal: controller.signal }))).toBe('INDEX_ABORTED');
    expect(await codeOf(store.readSociIndex(digest, { signal: controller.signal }))).toBe('INDEX_ABORTED');
  });
});
