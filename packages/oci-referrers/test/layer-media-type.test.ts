// The layer media types every package asks about (unpacker, index builder, pull), against the
// lists in the OCI image spec (media-types.md) and Docker's image manifest v2 schema 2.
import { describe, expect, it } from 'vitest';
import { isLayerMediaType, layerCompressionOf, MediaType } from '../src/index.js';

describe('layer media types', () => {
  it('knows the compression of every tar layer type of both specs', () => {
    expect(
      Object.fromEntries(
        [
          'application/vnd.oci.image.layer.v1.tar',
          'application/vnd.oci.image.layer.v1.tar+gzip',
          'application/vnd.oci.image.layer.v1.tar+zstd',
          'application/vnd.oci.image.layer.nondistributable.v1.tar',
          'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip',
          'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd',
          'application/vnd.docker.image.rootfs.diff.tar',
          'application/vnd.docker.image.rootfs.diff.tar.gzip',
          'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip',
          'application/vnd.docker.image.rootfs.diff.tar.zstd',
        ].map((t) => [t, layerCompressionOf(t)]),
      ),
    ).toEqual({
      'application/vnd.oci.image.layer.v1.tar': 'none',
      'application/vnd.oci.image.layer.v1.tar+gzip': 'gzip',
      'application/vnd.oci.image.layer.v1.tar+zstd': 'zstd',
      'application/vnd.oci.image.layer.nondistributable.v1.tar': 'none',
      'application/vnd.oci.image.layer.nondistributable.v1.tar+gzip': 'gzip',
      'application/vnd.oci.image.layer.nondistributable.v1.tar+zstd': 'zstd',
      'application/vnd.docker.image.rootfs.diff.tar': 'none',
      'application/vnd.docker.image.rootfs.diff.tar.gzip': 'gzip',
      'application/vnd.docker.image.rootfs.foreign.diff.tar.gzip': 'gzip',
      'application/vnd.docker.image.rootfs.diff.tar.zstd': 'zstd',
    });
    expect(layerCompressionOf(MediaType.OciLayerGzip)).toBe('gzip');
  });

  it('no compression for what is not a tar layer, even when the name looks close', () => {
    for (const t of [
      MediaType.OciConfig,
      MediaType.OciManifest,
      'application/vnd.oci.image.layer.v1.tar+gzip+encrypted',
      'application/vnd.oci.image.layer.v1.tar+bzip2',
      'application/x-tar',
      'application/vnd.oci.image.layer.v1.tar+gzip ',
      '',
    ]) {
      expect(layerCompressionOf(t), t).toBeUndefined();
    }
  });

  it('a layer for containerd is any tar layer type and any other OCI layer type (its IsLayerType)', () => {
    expect(isLayerMediaType('application/vnd.docker.image.rootfs.diff.tar.gzip')).toBe(true);
    expect(isLayerMediaType('application/vnd.oci.image.layer.v1.tar+gzip+encrypted')).toBe(true);
    expect(isLayerMediaType(MediaType.OciConfig)).toBe(false);
    expect(isLayerMediaType(MediaType.DockerConfig)).toBe(false);
    expect(isLayerMediaType('application/vnd.amazon.soci.index.v1+json')).toBe(false);
  });
});
