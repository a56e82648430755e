// Workload-aware prefetch, end to end: the daemon records what a container reads from lazy
// layers, `soci create --prefetch` turns that list into the index's prefetch blobs, and the
// daemon fetches those spans as soon as the layers are mounted, before any container runs.
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PrefetchEntry, parsePrefetchList } from '@soci-ts/soci-index';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { type BuiltImage, pushLayout } from '@soci-ts/testing/images';
import { waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type Stack, startStack } from './support/stack.js';

const BUILD = ['--span-size', String(64 * 1024), '--min-layer-size', String(256 * 1024), '--quiet'];
const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

/** An image whose data layer is made of `seed`'s bytes (so two images share no data layer). */
function appImage(seed: number) {
  const files = {
    '/data/a.bin': noiseBytes(1024 * 1024, seed),
    '/data/b.bin': noiseBytes(1024 * 1024, seed + 100),
    /** Bigger than the recorder's whole-file limit: only the bytes read are listed. */
    '/data/c.bin': noiseBytes(3 * 1024 * 1024, seed + 200),
    '/data/text/f5.txt': `text of image ${seed}\n`.repeat(400),
  };
  const build = () =>
    buildBusyboxImage([
      { '/bin/busybox': { busybox: true }, [`/etc/image-${seed}`]: `image ${seed}\n` },
      files,
      { '/etc/motd': `motd ${seed}\n` },
    ]);
  return { files, build };
}

/** md5sum of the text file, then of a.bin, inside a container of `ref` (the read order matters). */
const sums = (ref: string) =>
  stack.runContainer(ref, ['/bin/busybox', 'md5sum', '/data/text/f5.txt', '/data/a.bin']);
const expectedSums = (files: ReturnType<typeof appImage>['files']) =>
  `${md5(files['/data/text/f5.txt'])}  /data/text/f5.txt\n${md5(files['/data/a.bin'])}  /data/a.bin\n`;

let stack: Stack;
let recordDir: string;
const recorded = appImage(21);
const prefetched = appImage(42);
let recordedImage: BuiltImage;
let prefetchedImage: BuiltImage;

beforeAll(async () => {
  recordDir = await mkdtemp(join(tmpdir(), 'soci-e2e-recorded-'));
  stack = await startStack({ backgroundFetch: false, recordDir });
  [recordedImage, prefetchedImage] = [await recorded.build(), await prefetched.build()];
}, 300_000);

afterAll(async () => {
  await stack?.stop();
  await recordedImage?.cleanup();
  await prefetchedImage?.cleanup();
  if (recordDir) await rm(recordDir, { recursive: true, force: true });
});

describe('prefetch lists', () => {
  let list: string;

  it('the daemon records the paths a container reads from lazy layers, in order, once each', async () => {
    const ref = await pushLayout(recordedImage, {
      host: stack.registry.host,
      repository: 'pf/rec',
      tag: 'v1',
    });
    await stack.soci(['create', ref, ...BUILD]);
    await stack.soci(['push', ref, '--quiet']);
    const report = await stack.pull(ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote']);
    expect(await sums(ref)).toBe(expectedSums(recorded.files));
    await stack.runContainer(ref, ['/bin/busybox', 'cat', '/data/a.bin']);
    await stack.runContainer(ref, [
      '/bin/busybox',
      'sh',
      '-c',
      '/bin/busybox head -c 5000 /data/c.bin >/dev/null',
    ]);
    // Without prefetch blobs in the index nothing was prefetched.
    expect(await stack.metric('soci_span_fetches_total', { priority: 'prefetch' })).toBe(0);

    list = join(recordDir, `${recordedImage.manifestDigest.slice(7)}.paths`);
    let entries: PrefetchEntry[] = [];
    await waitUntil('the recorded list', async () => {
      entries = parsePrefetchList(await readFile(list, 'utf8'));
      return entries.some((e) => e.path === '/data/c.bin');
    });
    // Each mount lists a file once, small files whole; busybox (a lazy layer too) was read first.
    const data = entries.filter((e) => e.path.startsWith('/data/'));
    expect(data.slice(0, 2)).toEqual([{ path: '/data/text/f5.txt' }, { path: '/data/a.bin' }]);
    const c = data.slice(2);
    expect(c.every((e) => e.path === '/data/c.bin' && e.range)).toBe(true);
    expect(c[0]?.range?.offset).toBe(0);
    // Only what head (and the kernel's read-ahead) read: far less than the 3 MiB file.
    expect(c.reduce((n, e) => n + e.range!.length, 0)).toBeLessThan(1024 * 1024);
    expect(entries[0]?.path).toBe('/bin/busybox');
  });

  it('an index built with that list makes the daemon fetch exactly those files at mount time', async () => {
    const ref = await pushLayout(prefetchedImage, {
      host: stack.registry.host,
      repository: 'pf/app',
      tag: 'v1',
    });
    await stack.soci(['create', ref, '--prefetch', list, ...BUILD]);
    await stack.soci(['push', ref, '--quiet']);
    await stack.pull(ref);
    // No container runs: whatever is fetched now was prefetched.
    let last = -1;
    let stableSince = Date.now();
    await waitUntil(
      'prefetch to finish',
      async () => {
        const prefetches = await stack.metric('soci_span_fetches_total', { priority: 'prefetch' });
        const bytes = await stack.metric('soci_bytes_fetched_total');
        if (bytes !== last) [last, stableSince] = [bytes, Date.now()];
        return prefetches > 0 && Date.now() - stableSince > 1500;
      },
      60_000,
    );
    expect(await stack.metric('soci_span_fetches_total', { priority: 'foreground' })).toBeGreaterThan(0); // image 1's reads

    // The registry goes away: what the list named is there, what it did not name is not.
    await stack.registry.stop();
    expect(await sums(ref)).toBe(expectedSums(prefetched.files));
    const head = ['/bin/busybox', 'sh', '-c', '/bin/busybox head -c 5000 /data/c.bin | /bin/busybox md5sum'];
    expect(await stack.runContainer(ref, head)).toBe(
      `${md5(prefetched.files['/data/c.bin'].subarray(0, 5000))}  -\n`,
    );
    // The end of c.bin shares a span with the listed text file: its middle is what nobody listed.
    const middle = ['dd', 'if=/data/c.bin', 'of=/dev/null', 'bs=4096', 'skip=300', 'count=1'];
    for (const unlisted of [['md5sum', '/data/b.bin'], middle]) {
      await expect(stack.runContainer(ref, ['/bin/busybox', ...unlisted])).rejects.toThrow(
        /I\/O error|Input\/output error/,
      );
    }
  });
});
