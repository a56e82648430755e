import {
  digestOf,
  EMPTY_JSON_BYTES as EMPTY_CONFIG_BYTES,
  EMPTY_JSON_DIGEST as EMPTY_CONFIG_DIGEST,
} from '@soci-ts/oci-referrers';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';

import { buildIndexManifest, parseIndexManifest, type SociIndex, SociIndexError } from '../src/index.js';

const digestArb = fc.uint8Array({ minLength: 1, maxLength: 8 }).map((b) => digestOf(b));
const ztocArb = fc.record({
  digest: digestArb,
  size: fc.nat({ max: 1e9 }),
  layerDigest: digestArb,
  layerMediaType: fc.constantFrom(
    'application/vnd.oci.image.layer.v1.tar+gzip',
    'application/vnd.oci.image.layer.v1.tar',
  ),
  spanSize: fc.integer({ min: 1, max: 1 << 30 }),
});
const indexArb: fc.Arbitrary<SociIndex> = fc.record({
  version: fc.constantFrom('v1' as const, 'v2' as const),
  buildToolIdentifier: fc.string({ minLength: 1 }),
  disableXattrs: fc.boolean(),
  ztocs: fc.array(ztocArb, { maxLength: 5 }),
  prefetches: fc.array(fc.record({ digest: digestArb, size: fc.nat(), layerDigest: digestArb }), {
    maxLength: 2,
  }),
});

describe('SOCI index manifest', () => {
  it('the empty config digest is sha256 of "{}"', () => {
    expect(digestOf(EMPTY_CONFIG_BYTES)).toBe(EMPTY_CONFIG_DIGEST);
  });

  it('parse(build(index)) gives the index back, bytes are JSON the registry can take', () => {
    fc.assert(
      fc.property(indexArb, (index) => {
        const built = buildIndexManifest(index);
        expect(parseIndexManifest(built.bytes)).toEqual(index);
        expect(built.descriptor.digest).toBe(digestOf(built.bytes));
        const json = JSON.parse(new TextDecoder().decode(built.bytes));
        expect(json.config).toEqual({
          mediaType: `application/vnd.amazon.soci.index.${index.version}+json`,
          digest: EMPTY_CONFIG_DIGEST,
          size: 2,
        });
        expect(json.artifactType).toBeUndefined();
        expect(json.annotations['com.amazon.soci.disable-xattrs']).toBe(
          index.disableXattrs ? 'true' : undefined,
        );
      }),
    );
  });

  it('accepts the artifact type at top level (other writers)', () => {
    const built = buildIndexManifest({
      version: 'v1',
      buildToolIdentifier: 'x',
      disableXattrs: false,
      ztocs: [],
      prefetches: [],
    });
    const json = JSON.parse(new TextDecoder().decode(built.bytes));
    json.artifactType = 'application/vnd.amazon.soci.index.v2+json';
    json.config.mediaType = 'application/vnd.oci.empty.v1+json';
    expect(parseIndexManifest(json).version).toBe('v2');
  });

  it('reads a layer without a span-size annotation (older writers)', () => {
    const d = digestOf(new Uint8Array([1]));
    const index = parseIndexManifest({
      schemaVersion: 2,
      config: {
        mediaType: 'application/vnd.amazon.soci.index.v1+json',
        digest: EMPTY_CONFIG_DIGEST,
        size: 2,
      },
      layers: [
        {
          mediaType: 'application/octet-stream',
          digest: d,
          size: 3,
          annotations: {
            'com.amazon.soci.image-layer-digest': d,
            'com.amazon.soci.image-layer-mediaType': 'm',
          },
        },
      ],
    });
    expect(index.ztocs[0]).toEqual({ digest: d, size: 3, layerDigest: d, layerMediaType: 'm' });
  });

  it.each([
    ['not JSON', '{'],
    [
      'an image manifest',
      JSON.stringify({
        schemaVersion: 2,
        config: {
          mediaType: 'application/vnd.oci.image.config.v1+json',
          digest: EMPTY_CONFIG_DIGEST,
          size: 2,
        },
        layers: [],
      }),
    ],
    [
      'a layer without the layer digest',
      JSON.stringify({
        schemaVersion: 2,
        config: {
          mediaType: 'application/vnd.amazon.soci.index.v1+json',
          digest: EMPTY_CONFIG_DIGEST,
          size: 2,
        },
        layers: [{ mediaType: 'application/octet-stream', digest: EMPTY_CONFIG_DIGEST, size: 2 }],
      }),
    ],
  ])('rejects %s with INDEX_INVALID', (_name, text) => {
    expect(() => parseIndexManifest(text)).toThrow(SociIndexError);
    try {
      parseIndexManifest(text);
    } catch (err) {
      expect((err as SociIndexError).code).toBe('INDEX_INVALID');
    }
  });
});

describe('prefetch blobs', () => {
  it('parse(encode(spans)) gives the spans back; bad ranges are rejected', async () => {
    const { encodePrefetch, parsePrefetch } = await import('../src/index.js');
    const spanArb = fc
      .tuple(fc.nat(1000), fc.nat(1000), fc.option(fc.integer({ min: -5, max: 5 }), { nil: undefined }))
      .map(([a, b, priority]) => ({
        startSpan: Math.min(a, b),
        endSpan: Math.max(a, b),
        ...(priority !== undefined ? { priority } : {}),
      }));
    fc.assert(
      fc.property(fc.array(spanArb), (spans) => {
        expect(parsePrefetch(encodePrefetch(spans))).toEqual(spans);
      }),
    );
    expect(JSON.parse(new TextDecoder().decode(encodePrefetch([{ startSpan: 1, endSpan: 2 }])))).toEqual({
      version: '1.0',
      prefetch_spans: [{ start_span: 1, end_span: 2 }],
    });
    expect(() => parsePrefetch('{"version":"1.0","prefetch_spans":[{"start_span":3,"end_span":1}]}')).toThrow(
      /range/,
    );
  });
});
