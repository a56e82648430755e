import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, hostPlatform } from '@soci-ts/oci-referrers';

import { run } from '@soci-ts/testing';

import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  ArchiveSource,
  buildIndexManifest,
  buildSociIndex,
  findSociIndex,
  type ImageSource,
  LayoutSource,
  loadImageRoot,
  type SociIndexError,
  selectPlatformImage,
} from '../src/index.js';
import { buildFixtureImage, type FixtureImage } from './fixture.js';

let image: FixtureImage;
let dir: string;

beforeAll(async () => {
  image = await buildFixtureImage('t1');
  dir = await mkdtemp(join(tmpdir(), 'soci-archive-'));
  await run('tar', ['-cf', join(dir, 'image.tar'), '-C', image.layout, '.']);
});
afterAll(async () => {
  await image?.cleanup();
  await rm(dir, { recursive: true, force: true });
});

async function build(source: ImageSource) {
  const root = await loadImageRoot(source);
  const platformImage = await selectPlatformImage(source, root, hostPlatform());
  return buildSociIndex(source, platformImage, {
    minLayerSize: 1000,
    spanSize: 32768,
    version: 'v1',
    concurrency: 2,
  });
}

describe('building from local sources', () => {
  it('oci: layouts and oci-archive: tars give the same index; small layers are skipped with a reason', async () => {
    const fromLayout = await build(new LayoutSource(image.layout, image.tag));
    const fromArchive = await build(new ArchiveSource(join(dir, 'image.tar'), image.tag));
    expect(fromArchive.manifest.descriptor.digest).toBe(fromLayout.manifest.descriptor.digest);
    expect(fromLayout.index.ztocs).toHaveLength(2);
    expect(fromLayout.layers[1]!.skipped).toMatch(/smaller than the minimum/);
    expect(fromLayout.index.subject?.digest).toBe(image.manifestDigest);
    // The top layer has an opaque directory marker: xattrs stay enabled.
    expect(fromLayout.index.disableXattrs).toBe(false);
  });

  it('names a missing tag and lists the tags there are', async () => {
    await expect(build(new LayoutSource(image.layout, 'nope'))).rejects.toMatchObject({
      code: 'INDEX_NOT_FOUND',
    });
    const err = (await build(new ArchiveSource(join(dir, 'image.tar'), 'nope')).catch(
      (e) => e,
    )) as SociIndexError;
    expect(err.message).toContain(`tags: ${image.tag}`);
  });
});

describe('findSociIndex order', () => {
  const manifestDigest = digestOf(Buffer.from('m'));
  const v1 = buildIndexManifest({
    version: 'v1',
    buildToolIdentifier: 't',
    disableXattrs: false,
    ztocs: [],
    prefetches: [],
    subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: manifestDigest, size: 1 },
  });
  const v2 = buildIndexManifest({
    version: 'v2',
    buildToolIdentifier: 't',
    disableXattrs: false,
    ztocs: [],
    prefetches: [],
  });
  const explicit = buildIndexManifest({
    version: 'v2',
    buildToolIdentifier: 'explicit',
    disableXattrs: false,
    ztocs: [],
    prefetches: [],
  });
  function repo(annotated: boolean) {
    const blobs = new Map([v1, v2, explicit].map((b) => [b.descriptor.digest, b]));
    return {
      fetchManifest: async (ref: string | { digest: string }) => {
        const digest = typeof ref === 'string' ? ref : ref.digest;
        if (digest === manifestDigest) {
          const m = {
            schemaVersion: 2,
            layers: [],
            annotations: annotated ? { 'com.amazon.soci.index-digest': v2.descriptor.digest } : {},
          };
          return {
            descriptor: { mediaType: 'm', digest, size: 1 },
            bytes: Buffer.from(JSON.stringify(m)),
            manifest: m,
          };
        }
        const b = blobs.get(digest)!;
        return { descriptor: b.descriptor, bytes: b.bytes, manifest: b.manifest };
      },
      referrers: async () => [v1.descriptor, v2.descriptor],
    } as never;
  }
  it('explicit digest, then v2 annotation, then the first v1 referrer', async () => {
    expect(
      (await findSociIndex(repo(true), manifestDigest, { indexDigest: explicit.descriptor.digest }))?.index
        .buildToolIdentifier,
    ).toBe('explicit');
    expect((await findSociIndex(repo(true), manifestDigest))?.via).toBe('v2-annotation');
    const viaV1 = await findSociIndex(repo(false), manifestDigest);
    expect(viaV1?.via).toBe('v1-referrers');
    expect(viaV1?.descriptor.digest).toBe(v1.descriptor.digest);
    expect(await findSociIndex(repo(false), manifestDigest, { sociV1Referrers: false })).toBeUndefined();
  });
});
