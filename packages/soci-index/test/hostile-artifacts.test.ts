import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf, EMPTY_JSON_DIGEST as EMPTY_CONFIG_DIGEST } from '@soci-ts/oci-referrers';

import { describe, expect, it } from 'vitest';

import { measureSync, RSS_GROWTH_BOUND, WALL_MS_BOUND } from '../../ztoc/test/resource-bounds.js';

import {
  buildIndexManifest,
  DEFAULT_SOCI_INDEX_LIMITS,
  encodePrefetch,
  findSociIndex,
  LocalStore,
  parseImageManifest,
  parseIndexManifest,
  parsePrefetch,
  type SociIndex,
} from '../src/index.js';

const code = (c: string) => expect.objectContaining({ code: c });
const digest = (s: string) => digestOf(Buffer.from(s));
const MANIFEST = 'application/vnd.oci.image.manifest.v1+json';

/** `count` layer descriptors, as a SOCI index lists its zTOCs. */
function ztocLayers(count: number) {
  return Array.from({ length: count }, (_, i) => ({
    mediaType: 'application/octet-stream',
    digest: digest(`z${i}`),
    size: 1,
    annotations: { 'com.amazon.soci.image-layer-digest': digest(`l${i}`) },
  }));
}

function indexJson(layers: unknown[], extra: object = {}): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.amazon.soci.index.v1+json', digest: EMPTY_CONFIG_DIGEST, size: 2 },
    layers,
    ...extra,
  });
}

function imageJson(layers: unknown[]): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: digest('c'), size: 2 },
    layers,
  });
}

/** Refused with `errorCode` in bounded time and memory. */
function expectBoundedRefusal(parse: () => unknown, errorCode: string, limitName: string): void {
  const cost = measureSync(parse);
  expect(cost.error).toMatchObject({ code: errorCode, message: expect.stringContaining(limitName) });
  expect(cost.ms).toBeLessThan(WALL_MS_BOUND);
  expect(cost.rssGrowth).toBeLessThan(RSS_GROWTH_BOUND);
}

describe('SOCI index manifest limits', () => {
  it('refuses a manifest above maxManifestBytes before parsing it', () => {
    // 64 MiB of JSON: parsing it would take seconds and hundreds of MiB.
    const huge = new TextEncoder().encode(indexJson([], { annotations: { pad: 'x'.repeat(64 << 20) } }));
    expectBoundedRefusal(() => parseIndexManifest(huge), 'INDEX_LIMIT_EXCEEDED', 'maxManifestBytes');
    expect(() => parseIndexManifest(indexJson([]), { limits: { maxManifestBytes: 10 } })).toThrow(
      code('INDEX_LIMIT_EXCEEDED'),
    );
  });

  it('refuses more layers than maxLayers, and reads exactly maxLayers', () => {
    const max = DEFAULT_SOCI_INDEX_LIMITS.maxLayers;
    expect(parseIndexManifest(indexJson(ztocLayers(max))).ztocs).toHaveLength(max);
    expectBoundedRefusal(
      () => parseIndexManifest(indexJson(ztocLayers(max + 1))),
      'INDEX_LIMIT_EXCEEDED',
      'maxLayers',
    );
    expect(() =>
      parseIndexManifest(JSON.parse(indexJson(ztocLayers(3))), { limits: { maxLayers: 2 } }),
    ).toThrow(code('INDEX_LIMIT_EXCEEDED'));
  });

  it('refuses annotations that are not strings, and a nonsense limit', () => {
    expect(() => parseIndexManifest(indexJson([], { annotations: 'abc' }))).toThrow(code('INDEX_INVALID'));
    const layer = { ...ztocLayers(1)[0], annotations: { 'com.amazon.soci.image-layer-digest': 7 } };
    expect(() => parseIndexManifest(indexJson([layer]))).toThrow(code('INDEX_INVALID'));
    expect(() => parseIndexManifest(indexJson([]), { limits: { maxLayers: -1 } })).toThrow(
      code('INDEX_INVALID_ARGUMENT'),
    );
  });
});

describe('values that cannot be printed (found by bench/fuzz)', () => {
  it.each([
    ['an object without a primitive form', '[{"toString":1}]'],
    ['an array nested 100,000 deep', `${'['.repeat(100_000)}1${']'.repeat(100_000)}`],
  ])('names an artifact type that is %s without printing it', (_, artifactType) => {
    const config = { mediaType: 'x', digest: EMPTY_CONFIG_DIGEST, size: 2 };
    // Spliced in as text: JSON.stringify would overflow on the deep array.
    const text = indexJson([], { artifactType: 'HERE', config }).replace('"HERE"', () => artifactType);
    expect(() => parseIndexManifest(text)).toThrow(/artifact type is a list/);
  });

  it('cuts a long artifact type or span size in the message', () => {
    const long = 'application/vnd.amazon.soci.index.v2+json'.repeat(100);
    const err = (() => {
      try {
        parseIndexManifest(
          indexJson([], { config: { mediaType: long, digest: EMPTY_CONFIG_DIGEST, size: 2 } }),
        );
      } catch (e) {
        return e as Error;
      }
    })();
    expect(err).toMatchObject({ code: 'INDEX_INVALID' });
    expect(err!.message.length).toBeLessThan(300);
  });
});

describe('prefetch blob limits', () => {
  it('refuses a blob above maxPrefetchBytes before parsing it', () => {
    const huge = new TextEncoder().encode(
      `{"version":"1.0","prefetch_spans":[],"pad":"${'x'.repeat(32 << 20)}"}`,
    );
    expectBoundedRefusal(() => parsePrefetch(huge), 'INDEX_LIMIT_EXCEEDED', 'maxPrefetchBytes');
  });

  it('refuses more span ranges than maxPrefetchSpans', () => {
    const spans = Array.from({ length: 11 }, (_, i) => ({ startSpan: i, endSpan: i }));
    expect(parsePrefetch(encodePrefetch(spans), { limits: { maxPrefetchSpans: 11 } })).toHaveLength(11);
    expect(() => parsePrefetch(encodePrefetch(spans), { limits: { maxPrefetchSpans: 10 } })).toThrow(
      /maxPrefetchSpans/,
    );
  });
});

describe('image manifests', () => {
  const layer = { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: digest('l'), size: 10 };

  it('reads layers and refuses what is not an image manifest', () => {
    expect(parseImageManifest(imageJson([layer])).layers).toEqual([layer]);
    for (const bad of [
      '[]',
      'null',
      '{"layers":[]}',
      imageJson([{ ...layer, digest: 'sha256:short' }]),
      imageJson([{ ...layer, size: -1 }]),
      imageJson([null]),
      JSON.stringify({ ...JSON.parse(imageJson([])), layers: {} }),
    ]) {
      expect(() => parseImageManifest(bad), bad).toThrow(code('INDEX_INVALID_IMAGE'));
    }
  });

  it('refuses too many layers and too many bytes', () => {
    const max = DEFAULT_SOCI_INDEX_LIMITS.maxLayers;
    expectBoundedRefusal(
      () => parseImageManifest(imageJson(Array.from({ length: max + 1 }, () => layer))),
      'INDEX_LIMIT_EXCEEDED',
      'maxLayers',
    );
    expectBoundedRefusal(
      () => parseImageManifest(`${imageJson([])}${' '.repeat(8 << 20)}`),
      'INDEX_LIMIT_EXCEEDED',
      'maxManifestBytes',
    );
  });
});

describe('an index bound to the wrong image', () => {
  const image = digest('image');
  const other = digest('other');
  const v1For = (subject: string | undefined, tool = 'v1') =>
    buildIndexManifest({
      version: 'v1',
      buildToolIdentifier: tool,
      disableXattrs: false,
      ztocs: [],
      prefetches: [],
      ...(subject ? { subject: { mediaType: MANIFEST, digest: subject, size: 1 } } : {}),
    } satisfies SociIndex);

  /** A registry with the image manifest (v2 annotation optional) and these referrers. */
  function registry(referrers: ReturnType<typeof v1For>[], annotated?: ReturnType<typeof v1For>) {
    const byDigest = new Map(referrers.map((r) => [r.descriptor.digest, r]));
    if (annotated) byDigest.set(annotated.descriptor.digest, annotated);
    return {
      fetchManifest: async (ref: string) => {
        if (ref === image) {
          const manifest = {
            schemaVersion: 2,
            layers: [],
            annotations: annotated ? { 'com.amazon.soci.index-digest': annotated.descriptor.digest } : {},
          };
          return {
            descriptor: { mediaType: MANIFEST, digest: ref, size: 1 },
            bytes: Buffer.from('{}'),
            manifest,
          };
        }
        const found = byDigest.get(ref)!;
        return { descriptor: found.descriptor, bytes: found.bytes, manifest: found.manifest };
      },
      referrers: async () => referrers.map((r) => r.descriptor),
    } as never;
  }

  it('uses a v1 referrer whose subject is the image', async () => {
    const found = await findSociIndex(registry([v1For(image)]), image);
    expect(found?.index.subject?.digest).toBe(image);
  });

  it.each([
    ['names another image', other],
    ['names no image', undefined],
  ])('refuses a v1 referrer that %s, however it was found', async (_, subject) => {
    const wrong = v1For(subject);
    await expect(findSociIndex(registry([wrong]), image)).rejects.toThrow(code('INDEX_WRONG_SUBJECT'));
    await expect(
      findSociIndex(registry([wrong]), image, { indexDigest: wrong.descriptor.digest }),
    ).rejects.toThrow(/not for sha256:/);
    await expect(findSociIndex(registry([], wrong), image)).rejects.toThrow(code('INDEX_WRONG_SUBJECT'));
  });

  it('refuses to store a v1 index for another image', async () => {
    const root = await mkdtemp(join(tmpdir(), 'soci-subject-'));
    try {
      const store = await LocalStore.open(root);
      const entry = {
        manifestBytes: v1For(other).bytes,
        blobs: [],
        imageManifestDigest: image,
        imageRef: 'r/x:1',
      };
      await expect(store.addIndex(entry)).rejects.toThrow(code('INDEX_WRONG_SUBJECT'));
      expect(await store.listIndexes()).toEqual([]);
      await store.addIndex({ ...entry, manifestBytes: v1For(image).bytes });
      expect(await store.listIndexes()).toHaveLength(1);
    } finally {
      await rm(root, { recursive: true, force: true });
    }
  });
});
