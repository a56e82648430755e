import { createHash } from 'node:crypto';
import type { Descriptor } from '@soci-ts/oci-referrers';
import fc from 'fast-check';
import { describe, expect, test } from 'vitest';
import {
  configSnapshotGcLabel,
  imageLayersLabel,
  LABEL,
  MAX_LABEL_BYTES,
  manifestGcLabels,
  snapshotLabels,
} from '../src/index.js';

const layer = fc.uint8Array({ minLength: 1, maxLength: 8 }).map(
  (b): Descriptor => ({
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    digest: `sha256:${createHash('sha256').update(b).digest('hex')}`,
    size: b.length,
  }),
);

describe('cri.image-layers', () => {
  test('lists this layer and the following ones, comma-separated', () => {
    fc.assert(
      fc.property(fc.array(layer, { minLength: 1, maxLength: 20 }), fc.nat(), (layers, k) => {
        const i = k % layers.length;
        expect(imageLayersLabel(layers, i)).toBe(
          layers
            .slice(i)
            .map((l) => l.digest)
            .join(','),
        );
      }),
    );
  });

  test('is cut before the digest that would pass containerd’s 4096-byte label limit', () => {
    fc.assert(
      fc.property(fc.array(layer, { minLength: 40, maxLength: 80 }), (layers) => {
        const value = imageLayersLabel(layers, 0);
        const all = layers.map((l) => l.digest);
        const kept = value.split(',');
        expect(kept).toEqual(all.slice(0, kept.length));
        expect(LABEL.imageLayers.length + value.length).toBeLessThanOrEqual(MAX_LABEL_BYTES);
        if (kept.length < all.length) {
          expect(LABEL.imageLayers.length + value.length + 1 + all[kept.length]!.length).toBeGreaterThan(
            MAX_LABEL_BYTES,
          );
        }
      }),
    );
  });
});

describe('snapshot labels for Prepare', () => {
  const layers: Descriptor[] = [
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'1'.repeat(64)}`, size: 1 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest: `sha256:${'2'.repeat(64)}`, size: 2 },
  ];
  const ctx = {
    imageRef: '127.0.0.1:5000/app:v1',
    manifestDigest: `sha256:${'a'.repeat(64)}`,
    layers,
    index: 1,
    chainId: `sha256:${'c'.repeat(64)}`,
  };

  test('carry the target chain ID and the CRI labels remote snapshotters read', () => {
    expect(
      snapshotLabels(ctx, { 'containerd.io/snapshot/remote/soci.index.digest': `sha256:${'9'.repeat(64)}` }),
    ).toEqual({
      'containerd.io/snapshot.ref': ctx.chainId,
      'containerd.io/snapshot/cri.image-ref': '127.0.0.1:5000/app:v1',
      'containerd.io/snapshot/cri.manifest-digest': ctx.manifestDigest,
      'containerd.io/snapshot/cri.layer-digest': layers[1]!.digest,
      'containerd.io/snapshot/cri.image-layers': layers[1]!.digest,
      'containerd.io/snapshot/remote/soci.index.digest': `sha256:${'9'.repeat(64)}`,
    });
  });

  test('reject extra labels a proxy snapshotter would never receive', () => {
    expect(() => snapshotLabels(ctx, { 'soci.index.digest': 'x' })).toThrow(/containerd\.io\/snapshot\//);
    expect(() => snapshotLabels(ctx, { 'containerd.io/snapshot/x': 'y'.repeat(5000) })).toThrow(/4096/);
    expect(() => snapshotLabels({ ...ctx, index: 2 }, {})).toThrow(RangeError);
  });
});

describe('gc labels', () => {
  test('a manifest references its config and every layer by index', () => {
    fc.assert(
      fc.property(layer, fc.array(layer, { maxLength: 10 }), (config, layers) => {
        const labels = manifestGcLabels(config, layers);
        expect(labels['containerd.io/gc.ref.content.config']).toBe(config.digest);
        expect(Object.keys(labels)).toHaveLength(layers.length + 1);
        for (const [i, l] of layers.entries())
          expect(labels[`containerd.io/gc.ref.content.l.${i}`]).toBe(l.digest);
      }),
    );
  });

  test('the config references the top snapshot of its snapshotter', () => {
    expect(configSnapshotGcLabel('soci', 'sha256:top')).toEqual({
      'containerd.io/gc.ref.snapshot.soci': 'sha256:top',
    });
  });
});
