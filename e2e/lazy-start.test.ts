// The product, end to end: containerd starts containers from an unmodified image whose SOCI
// index sits in a registry, through our snapshotter, before the image is downloaded.
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import type { BuiltImage } from '@soci-ts/testing/images';
import { pushLayout } from '@soci-ts/testing/images';
import { waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './support/stack.js';

const SPAN = 64 * 1024;
const MIN_LAYER = 256 * 1024;
const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

/** Files of the data layer: one big multi-span file and many small text files. */
const big = noiseBytes(3 * 1024 * 1024, 7);
const small: Record<string, string> = {};
for (let i = 0; i < 200; i++) small[`/data/text/f${i}.txt`] = `file ${i}\n`.repeat(50 + i);
const motd = 'welcome to the lazy container\n';
/** Never read before the registry goes away: its middle spans are fetched by nobody. */
const unread = noiseBytes(1024 * 1024, 11);

let stack: Stack;
let image: BuiltImage;
let bare: BuiltImage;
let ref: string;
let layerBytes: number;

beforeAll(async () => {
  // Background fetch off, so that bytes fetched measure what the container read.
  stack = await startStack({ backgroundFetch: false, readTimeout: '5s' });
  image = await buildBusyboxImage([
    { '/bin/busybox': { busybox: true } },
    { '/data/big.bin': big, '/data/unread.bin': unread, ...small },
    { '/etc/motd': motd },
  ]);
  ref = await pushLayout(image, { host: stack.registry.host, repository: 'lazy/app', tag: 'v1' });
  bare = await buildBusyboxImage([
    // Its own first layer (not the app's busybox layer, which may be byte-identical and present).
    { '/bin/busybox': { busybox: true }, '/etc/bare': 'bare image\n' },
    { '/etc/motd': 'no index here\n' },
  ]);
  await stack.soci([
    'create',
    ref,
    '--span-size',
    String(SPAN),
    '--min-layer-size',
    String(MIN_LAYER),
    '--quiet',
  ]);
  await stack.soci(['push', ref, '--quiet']);
  const manifest = JSON.parse(await fetchManifest(stack.registry.url, 'lazy/app', 'v1')) as {
    layers: { size: number }[];
  };
  layerBytes = manifest.layers.reduce((n, l) => n + l.size, 0);
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  await image?.cleanup();
  await bare?.cleanup();
});

/** Every span file below the daemon's span cache directory. */
async function spanFiles(root: string): Promise<string[]> {
  const out: string[] = [];
  for (const layer of await readdir(root).catch(() => [] as string[])) {
    for (const name of await readdir(join(root, layer))) out.push(join(root, layer, name));
  }
  return out;
}

async function fetchManifest(url: string, repo: string, tag: string): Promise<string> {
  const res = await fetch(`${url}/v2/${repo}/manifests/${tag}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  return res.text();
}

describe(`lazy container start through containerd ${containerdUnderTest().version}`, () => {
  it('mounts indexed layers lazily, unpacks the small one, and the container reads the right bytes', async () => {
    const report = await stack.pull(ref);
    // containerd downloads none of the layers: the snapshotter claimed all three.
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote']);
    expect(report.layers.every((l) => l.bytesFetched === 0)).toBe(true);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(2);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(1);

    const out = await stack.runContainer(ref, ['/bin/busybox', 'cat', '/etc/motd', '/data/text/f7.txt']);
    expect(out).toBe(motd + small['/data/text/f7.txt']);
    // Only what was read came over the network: far less than the image.
    const fetched = await stack.metric('soci_bytes_fetched_total');
    expect(fetched).toBeGreaterThan(0);
    expect(fetched).toBeLessThan(layerBytes / 2);

    const sums = await stack.runContainer(ref, [
      '/bin/busybox',
      'sh',
      '-c',
      'cd /data && /bin/busybox md5sum big.bin text/f0.txt text/f199.txt',
    ]);
    expect(sums).toBe(
      [
        `${md5(big)}  big.bin`,
        `${md5(small['/data/text/f0.txt']!)}  text/f0.txt`,
        `${md5(small['/data/text/f199.txt']!)}  text/f199.txt`,
        '',
      ].join('\n'),
    );
  });

  it("tells containerd's version in its log and metrics, once, at first contact", async () => {
    const { version } = stack.containerd.release;
    const contacts = stack.daemon
      .output()
      .split('\n')
      .filter((l) => l.includes('"containerd contacted"'))
      .map((l) => JSON.parse(l) as { level: number; containerdVersion: string });
    expect(contacts).toEqual([expect.objectContaining({ level: 30, containerdVersion: version })]);
    expect(await stack.metric('soci_snapshotter_containerd_info', { version, tested: 'true' })).toBe(1);
  });

  it('runs two containers of the image at once on the same lazy layers', async () => {
    const before = await stack.metric('soci_layer_mounts_total');
    const [a, b] = await Promise.all([
      stack.runContainer(ref, ['/bin/busybox', 'cat', '/data/text/f3.txt']),
      stack.runContainer(ref, ['/bin/busybox', 'cat', '/data/text/f4.txt']),
    ]);
    expect(a).toBe(small['/data/text/f3.txt']);
    expect(b).toBe(small['/data/text/f4.txt']);
    expect(await stack.metric('soci_layer_mounts_total')).toBe(before);
  });

  it('`ctr image pull --snapshotter soci`: lazy on 2.x (transfer service), a full pull on 1.x', async () => {
    // An image of its own: layers already present would not be prepared again.
    const own = await buildBusyboxImage([
      { '/bin/busybox': { busybox: true }, '/etc/ctr-pulled': 'by ctr\n' },
      { '/data/big.bin': big },
    ]);
    try {
      const ownRef = await pushLayout(own, { host: stack.registry.host, repository: 'lazy/ctr', tag: 'v1' });
      await stack.soci([
        'create',
        ownRef,
        '--span-size',
        String(SPAN),
        '--min-layer-size',
        String(MIN_LAYER),
        '--quiet',
      ]);
      await stack.soci(['push', ownRef, '--quiet']);
      const lazyBefore = await stack.metric('soci_layer_mounts_total', { kind: 'lazy' });
      await stack.containerd.ctr(['image', 'pull', '--plain-http', '--snapshotter', 'soci', ownRef]);
      const lazy = (await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })) - lazyBefore;
      // 2.x's transfer service passes the image labels to a snapshotter that exports
      // enable_remote_snapshot_annotations; 1.x's ctr pull passes none, so containerd unpacks.
      expect(lazy).toBe(stack.containerd.release.major >= 2 ? 2 : 0);
      expect(await stack.runContainer(ownRef, ['/bin/busybox', 'md5sum', '/data/big.bin'])).toBe(
        `${md5(big)}  /data/big.bin\n`,
      );

      // Removing the image removes its snapshots, and with them the cached spans of their layers.
      const manifest = JSON.parse(await fetchManifest(stack.registry.url, 'lazy/ctr', 'v1')) as {
        layers: { digest: string }[];
      };
      const cacheDirs = manifest.layers.map((l) => join(stack.spanCacheDir, l.digest.replace(':', '-')));
      if (lazy > 0) {
        await waitUntil('spans of the big layer on disk', async () => existsSync(cacheDirs[1]!), 10_000);
      }
      await stack.containerd.ctr(['image', 'rm', '--sync', ownRef]);
      await waitUntil(
        'cached spans of the removed layers to go',
        async () => !cacheDirs.some(existsSync),
        30_000,
      );
    } finally {
      await own.cleanup();
    }
  });

  it('pulls and unpacks an image without a SOCI index itself (parallel pull and unpack)', async () => {
    const bareRef = await pushLayout(bare, { host: stack.registry.host, repository: 'lazy/bare', tag: 'v1' });
    const unpackedBefore = await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' });
    const report = await stack.pull(bareRef);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote']);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(unpackedBefore + 2);
    expect(await stack.metric('soci_fallbacks_total', { reason: 'no-soci-index' })).toBe(0);
    expect(await stack.runContainer(bareRef, ['/bin/busybox', 'cat', '/etc/motd'])).toBe('no index here\n');
  });

  it('restores its remote snapshots after a restart: a new container starts without a re-pull', async () => {
    let damaged = 0;
    await stack.restartDaemon(async () => {
      // A disk that lies: one bit flipped in the middle of every cached span.
      for (const file of await spanFiles(stack.spanCacheDir)) {
        const raw = await readFile(file);
        raw[Math.floor(raw.length / 2)]! ^= 0x04;
        await writeFile(file, raw);
        damaged++;
      }
      // The mounts outlive the daemon (the keeper holds them) and so does the kernel's page
      // cache of them: drop it, so that reads reach the new daemon and its damaged disk.
      await writeFile('/proc/sys/vm/drop_caches', '3');
    });
    expect(damaged).toBeGreaterThan(0);
    expect(await stack.runContainer(ref, ['/bin/busybox', 'cat', '/data/text/f9.txt'])).toBe(
      small['/data/text/f9.txt'],
    );
    // Files read before the restart, now from spans whose cache files are all damaged.
    const sums = await stack.runContainer(ref, [
      '/bin/busybox',
      'sh',
      '-c',
      'cd /data && /bin/busybox md5sum big.bin text/f0.txt',
    ]);
    expect(sums).toBe(`${md5(big)}  big.bin\n${md5(small['/data/text/f0.txt']!)}  text/f0.txt\n`);
    expect(await stack.metric('soci_span_cache_corrupt_total')).toBeGreaterThan(0);
    // The counter restarted with the daemon: the app's two lazy layers, each restored once (the
    // image pulled with ctr was removed, its snapshots with it).
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(2);
  }, 240_000);

  it('a hung registry costs a read EIO after read_timeout, not a hang; the read works once it answers', async () => {
    // A block in the middle of unread.bin: spans nobody fetched.
    const block = [
      '/bin/busybox',
      'sh',
      '-c',
      '/bin/busybox dd if=/data/unread.bin bs=4096 skip=128 count=1 2>/dev/null | /bin/busybox md5sum',
    ];
    const want = `${md5(unread.subarray(128 * 4096, 129 * 4096))}  -\n`;
    stack.registry.freeze();
    try {
      const started = Date.now();
      const failed = stack.runContainer(ref, block).then(
        (out) => `read succeeded: ${out}`,
        (err: Error) => err.message,
      );
      // Meanwhile the daemon answers containerd.
      const snapshots = await stack.containerd.ctr(['snapshots', '--snapshotter', 'soci', 'ls']);
      expect(snapshots.stdout).toContain('Committed');
      // md5sum of what dd got: dd fails with EIO, so the pipe's sum is not the block's.
      const out = await failed;
      expect(out).not.toContain(want.trim());
      expect(Date.now() - started).toBeLessThan(30_000);
    } finally {
      stack.registry.thaw();
    }
    expect(await stack.runContainer(ref, block)).toBe(want);
  }, 60_000);

  it('keeps serving fetched data when the registry goes away; unfetched reads fail cleanly', async () => {
    const cached = '/data/text/f9.txt';
    expect(await stack.runContainer(ref, ['/bin/busybox', 'cat', cached])).toBe(small[cached]);
    const lazyLayers = await stack.metric('soci_layer_mounts_total', { kind: 'lazy' });
    await stack.registry.stop();
    expect(await stack.runContainer(ref, ['/bin/busybox', 'cat', cached])).toBe(small[cached]);
    // unread.bin lives in spans nobody fetched: the read fails with EIO, nothing hangs or lies.
    await expect(stack.runContainer(ref, ['/bin/busybox', 'md5sum', '/data/unread.bin'])).rejects.toThrow(
      /I\/O error|Input\/output error/,
    );
    // containerd and the daemon are still healthy; nothing was mounted again.
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(lazyLayers);
    const snapshots = await stack.containerd.ctr(['snapshots', '--snapshotter', 'soci', 'ls']);
    expect(snapshots.stdout).toContain('Committed');
  });

  it('restarts with the registry still gone: lazy layers come back from local records, cached files are served', async () => {
    const cached = '/data/text/f9.txt';
    await stack.restartDaemon();
    // Both lazy layers mounted again (in the background) without a single registry request.
    await waitUntil(
      'both lazy layers restored',
      async () => (await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })) === 2,
      60_000,
    );
    expect(stack.daemon.output()).toMatch(/"from":"local record".*"msg":"layer mounted lazily"/);
    expect(await stack.runContainer(ref, ['/bin/busybox', 'cat', cached])).toBe(small[cached]);
    await expect(stack.runContainer(ref, ['/bin/busybox', 'md5sum', '/data/unread.bin'])).rejects.toThrow(
      /I\/O error|Input\/output error/,
    );
  }, 240_000);
});
