// The two switches of [parallel_pull_unpack]: `enable = false` leaves images without an index to
// containerd as before; `primary = true` unpacks every image whole, an indexed one too.
import { createHash } from 'node:crypto';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import { type BuiltImage, pushLayout } from '@soci-ts/testing/images';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startStack } from './support/stack.js';

const release = containerdUnderTest();
const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');
const big = noiseBytes(2 * 1024 * 1024, 31);
const BB = '/bin/busybox';

let image: BuiltImage;

beforeAll(async () => {
  image = await buildBusyboxImage([
    { '/bin/busybox': { busybox: true }, '/etc/modes': 'pull modes\n' },
    { '/data/big.bin': big },
  ]);
});

afterAll(async () => {
  await image?.cleanup();
});

describe(`[parallel_pull_unpack] switches (containerd ${release.version})`, () => {
  it('enable = false: the layers of an image without an index go to containerd', async () => {
    const stack = await startStack({ parallelPullUnpack: { enable: false } });
    try {
      const ref = await pushLayout(image, { host: stack.registry.host, repository: 'modes/off', tag: 'v1' });
      const report = await stack.pull(ref);
      expect(report.layers.map((l) => l.mode)).toEqual(['unpacked', 'unpacked']);
      expect(await stack.metric('soci_fallbacks_total', { reason: 'no-soci-index' })).toBe(2);
      expect(await stack.metric('soci_layer_mounts_total')).toBe(0);
      expect(await stack.runContainer(ref, [BB, 'md5sum', '/data/big.bin'])).toBe(
        `${md5(big)}  /data/big.bin\n`,
      );
    } finally {
      await stack.stop();
    }
  }, 180_000);

  it('primary = true: an image with a SOCI index is unpacked whole, nothing mounted lazily', async () => {
    const stack = await startStack({ parallelPullUnpack: { primary: true } });
    try {
      const ref = await pushLayout(image, {
        host: stack.registry.host,
        repository: 'modes/primary',
        tag: 'v1',
      });
      await stack.soci(['create', ref, '--span-size', String(64 * 1024), '--min-layer-size', '0', '--quiet']);
      await stack.soci(['push', ref, '--quiet']);
      const report = await stack.pull(ref);
      expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote']);
      expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(2);
      expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(0);
      expect(await stack.metric('soci_fallbacks_total')).toBe(0);
      expect(await stack.runContainer(ref, [BB, 'md5sum', '/data/big.bin'])).toBe(
        `${md5(big)}  /data/big.bin\n`,
      );
    } finally {
      await stack.stop();
    }
  }, 180_000);
});
