import { digestOf, type ImageIndex, type ImageManifest } from '@soci-ts/oci-referrers';
import { describe, expect, it } from 'vitest';

import { annotateManifestForV2, convertImageIndex, wrapManifestInIndex } from '../src/index.js';

const d = (s: string) => digestOf(new TextEncoder().encode(s));

const dockerManifest: ImageManifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
  config: { mediaType: 'application/vnd.docker.container.image.v1+json', digest: d('config'), size: 10 },
  layers: [
    { mediaType: 'application/vnd.docker.image.rootfs.diff.tar.gzip', digest: d('l1'), size: 100 },
    { mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: d('l2'), size: 200 },
  ],
};

describe('v2 conversion', () => {
  it('rewrites a Docker manifest to OCI media types, same digests, annotated with the index digest', () => {
    const out = annotateManifestForV2(dockerManifest, d('soci'));
    expect(out.manifest.mediaType).toBe('application/vnd.oci.image.manifest.v1+json');
    expect(out.manifest.config).toEqual({
      ...dockerManifest.config,
      mediaType: 'application/vnd.oci.image.config.v1+json',
    });
    expect(out.manifest.layers.map((l) => [l.mediaType, l.digest, l.size])).toEqual([
      ['application/vnd.oci.image.layer.v1.tar+gzip', d('l1'), 100],
      ['application/vnd.oci.image.layer.v1.tar', d('l2'), 200],
    ]);
    expect(out.manifest.annotations).toEqual({ 'com.amazon.soci.index-digest': d('soci') });
    expect(out.descriptor.digest).toBe(digestOf(out.bytes));
  });

  it('replaces converted platforms in an index, keeps the others, appends SOCI descriptors, drops stale ones', () => {
    const amd = {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: d('amd'),
      size: 1,
      platform: { os: 'linux', architecture: 'amd64' },
    };
    const arm = {
      mediaType: 'application/vnd.docker.distribution.manifest.v2+json',
      digest: d('arm'),
      size: 2,
      platform: { os: 'linux', architecture: 'arm64' },
    };
    const stale = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: d('old-soci'),
      size: 3,
      artifactType: 'application/vnd.amazon.soci.index.v2+json',
      annotations: { 'com.amazon.soci.image-manifest-digest': d('amd') },
    };
    const index: ImageIndex = {
      schemaVersion: 2,
      mediaType: 'application/vnd.docker.distribution.manifest.list.v2+json',
      manifests: [amd, arm, stale],
    };
    const out = convertImageIndex(index, [
      {
        originalDigest: d('amd'),
        manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('amd2'), size: 5 },
        sociIndex: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('soci'), size: 7 },
        platform: amd.platform,
      },
    ]);
    expect(out.manifest.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(out.manifest.manifests).toEqual([
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: d('amd2'),
        size: 5,
        platform: amd.platform,
      },
      arm,
      {
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        digest: d('soci'),
        size: 7,
        artifactType: 'application/vnd.amazon.soci.index.v2+json',
        platform: amd.platform,
        annotations: { 'com.amazon.soci.image-manifest-digest': d('amd2') },
      },
    ]);
  });

  it('wraps a single-platform image into an index', () => {
    const out = wrapManifestInIndex({
      originalDigest: d('m'),
      manifest: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('m2'), size: 5 },
      sociIndex: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: d('soci'), size: 7 },
      platform: { os: 'linux', architecture: 'amd64' },
    });
    expect(out.manifest.manifests).toHaveLength(2);
    expect(out.manifest.manifests[0]!.digest).toBe(d('m2'));
    expect(out.manifest.manifests[1]!.artifactType).toBe('application/vnd.amazon.soci.index.v2+json');
  });
});
