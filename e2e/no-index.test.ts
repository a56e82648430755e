// Images without a SOCI index, end to end: the daemon pulls them itself (parallel pull and unpack:
// every layer from the first Prepare up, in concurrent range requests, verified, unpacked into
// staging and renamed into place), through containerd, overlayfs and runc. A layer it cannot
// verify never becomes a snapshot, and a pull it was killed in the middle of can be done again.
import { createHash } from 'node:crypto';
import { link, mkdir, mkdtemp, readdir, readFile, stat, symlink, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { ContainerdClient, chainIds, type SnapshotInfo } from '@soci-ts/containerd-client';
import { buildBusyboxImage, type LayerSpec } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import { type FaultProxy, startFaultProxy } from '@soci-ts/testing/http-proxy';
import { type BuiltImage, pushLayout, skopeo } from '@soci-ts/testing/images';
import { run, waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCriStack } from './support/cri-stack.js';
import { type Stack, startStack } from './support/stack.js';

const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');
const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const MiB = 1024 * 1024;
const BB = '/bin/busybox';
const ZSTD_LAYER = 'application/vnd.oci.image.layer.v1.tar+zstd';
const LAYER_LABEL = 'containerd.io/snapshot/cri.layer-digest';

interface Descriptor {
  mediaType: string;
  digest: string;
  size: number;
}

/** Files of the four-layer image, to check what a container sees. */
interface AppFiles {
  name: string;
  big: Uint8Array;
  small: Map<string, string>;
}

/** An image pushed somewhere: its layers and diff IDs as the registry has them. */
interface Pushed {
  ref: string;
  layers: Descriptor[];
  chains: string[];
}

let stack: Stack;
let proxy: FaultProxy;
const built: BuiltImage[] = [];
let app: { image: BuiltImage; files: AppFiles };
let zstdApp: { image: BuiltImage; files: AppFiles };

// ---- images ----

/**
 * Layers appended to the image's layout: tars given as bytes, or made with GNU tar from what a
 * function puts in a directory (whiteout files, symlinks and hardlinks as they are: umoci makes
 * none of these).
 */
async function appendLayers(
  image: BuiltImage,
  layers: (((dir: string) => Promise<void>) | Uint8Array)[],
): Promise<BuiltImage> {
  const indexFile = join(image.layout, 'index.json');
  const index = JSON.parse(await readFile(indexFile, 'utf8')) as {
    manifests: (Descriptor & { annotations?: Record<string, string> })[];
  };
  const entry = index.manifests.find(
    (m) => m.annotations?.['org.opencontainers.image.ref.name'] === image.tag,
  )!;
  const manifest = JSON.parse(await readFile(image.blobPath(entry.digest), 'utf8')) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  const config = JSON.parse(await readFile(image.blobPath(manifest.config.digest), 'utf8')) as {
    rootfs: { diff_ids: string[] };
    history?: { created?: string; created_by?: string }[];
  };
  const putBlob = async (bytes: Uint8Array) => {
    const digest = sha256(bytes);
    await writeFile(image.blobPath(digest), bytes);
    return { digest, size: bytes.length };
  };
  for (const layer of layers) {
    const tar = layer instanceof Uint8Array ? layer : await tarOf(dirname(image.layout), layer);
    config.rootfs.diff_ids.push(sha256(tar));
    config.history?.push({ created: new Date().toISOString(), created_by: 'no-index.test.ts: GNU tar' });
    manifest.layers.push({
      mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
      ...(await putBlob(gzipSync(tar))),
    });
  }
  manifest.config = { ...manifest.config, ...(await putBlob(Buffer.from(JSON.stringify(config)))) };
  const written = await putBlob(Buffer.from(JSON.stringify(manifest)));
  Object.assign(entry, written);
  await writeFile(indexFile, JSON.stringify(index));
  return { ...image, manifestDigest: written.digest };
}

/** A tar (GNU tar, posix format, sorted, owner 0) of what `populate` puts in a new directory. */
async function tarOf(scratch: string, populate: (dir: string) => Promise<void>): Promise<Buffer> {
  const src = await mkdtemp(join(scratch, 'tar-layer-'));
  await populate(src);
  const tarFile = `${src}.tar`;
  await run('tar', [
    '--create',
    '--file',
    tarFile,
    '--format=posix',
    '--sort=name',
    '--numeric-owner',
    '--owner=0',
    '--group=0',
    '--directory',
    src,
    ...(await readdir(src)).sort(),
  ]);
  return readFile(tarFile);
}

async function put(dir: string, path: string, content: string | Uint8Array): Promise<void> {
  await mkdir(dirname(join(dir, path)), { recursive: true });
  await writeFile(join(dir, path), content);
}

/**
 * The image of the test: busybox with files the layers above remove; 2,000 small files; a layer
 * of whiteouts (a file, a directory, a small file of the layer below) and an opaque directory
 * replaced by new content; a 20 MB random file with a hardlink and a symlink to it, and an
 * absolute symlink.
 */
async function buildAppImage(name: string, seed: number): Promise<{ image: BuiltImage; files: AppFiles }> {
  const small = new Map<string, string>();
  for (let i = 0; i < 2000; i++)
    small.set(`/data/small/d${i % 20}/f${i}.txt`, `${name} small ${i}\n`.repeat(1 + (i % 40)));
  const files: AppFiles = { name, big: noiseBytes(20 * MiB, seed), small };
  const base: LayerSpec = {
    '/bin/busybox': { busybox: true },
    '/etc/image-name': `${name}\n`,
    '/etc/doomed.txt': 'deleted by a whiteout\n',
    '/etc/doomed-dir/inner.txt': 'deleted with its directory\n',
    '/opt/app/old-1.txt': 'lower content, hidden by the opaque directory\n',
    '/opt/app/sub/old-2.txt': 'lower subdirectory content\n',
    '/opt/app/kept-name.txt': 'lower version\n',
  };
  const unpacked = await buildBusyboxImage([base, Object.fromEntries(small)]);
  built.push(unpacked);
  const image = await appendLayers(unpacked, [
    async (dir) => {
      await put(dir, 'etc/.wh.doomed.txt', '');
      await put(dir, 'etc/.wh.doomed-dir', '');
      await put(dir, 'data/small/d0/.wh.f0.txt', '');
      await put(dir, 'opt/app/.wh..wh..opq', '');
      // Sorts before the opaque marker in the tar: the marker must not hide it.
      await put(dir, 'opt/app/-early.txt', 'upper, before the marker\n');
      await put(dir, 'opt/app/new.txt', `upper content of ${name}\n`);
      await put(dir, 'opt/app/kept-name.txt', 'upper version\n');
      await put(dir, 'opt/app/sub/new-2.txt', 'upper subdirectory content\n');
    },
    async (dir) => {
      await put(dir, 'data/big.bin', files.big);
      await link(join(dir, 'data/big.bin'), join(dir, 'data/hard.bin'));
      await symlink('big.bin', join(dir, 'data/soft.bin'));
      await mkdir(join(dir, 'etc'));
      await symlink('/opt/app/new.txt', join(dir, 'etc/app-link'));
    },
  ]);
  return { image, files };
}

// ---- what the daemon and containerd hold ----

const sociRoot = () => join(stack.dir, 'soci-root');

/** What is left in the daemon's staging directory, and `.unpack-` work directories anywhere in its snapshots. */
async function leftovers(): Promise<string[]> {
  const found = (await readdir(join(sociRoot(), 'staging')).catch(() => [] as string[])).map(
    (n) => `staging/${n}`,
  );
  const snapshots = join(sociRoot(), 'snapshots');
  for (const id of await readdir(snapshots)) {
    for (const name of await readdir(join(snapshots, id)).catch(() => [] as string[])) {
      if (name.includes('.unpack-')) found.push(`snapshots/${id}/${name}`);
    }
    if (id.includes('.unpack-')) found.push(`snapshots/${id}`);
  }
  return found;
}

/** Committed snapshots of the soci snapshotter as containerd lists them. */
async function committedSnapshots(): Promise<string[]> {
  const { stdout } = await stack.containerd.ctr(['snapshots', '--snapshotter', 'soci', 'ls']);
  return stdout
    .split('\n')
    .slice(1)
    .map((l) => l.trim().split(/\s+/))
    .filter((cols) => cols.at(-1) === 'Committed')
    .map((cols) => cols[0]!);
}

/** Every snapshot the daemon itself holds (its own Snapshots API: what containerd may not know of). */
async function daemonSnapshots(): Promise<SnapshotInfo[]> {
  const client = new ContainerdClient({ address: join(stack.dir, 'soci.sock'), namespace: 'soci' });
  try {
    return await client.snapshots('soci').list();
  } finally {
    client.close();
  }
}

/**
 * Runs containerd's garbage collection now (a lease deleted with sync): a failed pull deleted its
 * lease, so the snapshots it committed go, sooner or later. Settled, a retry does not race them.
 */
async function collectGarbage(): Promise<void> {
  const client = new ContainerdClient({
    address: stack.containerd.address,
    namespace: stack.containerd.namespace,
  });
  try {
    const lease = await client.leases.create();
    await client.leases.delete(lease.id, { sync: true });
  } finally {
    client.close();
  }
}

/** Layers and chain IDs of a pushed image, as the registry serves them. */
async function inspectPushed(ref: string): Promise<Pushed> {
  const raw = JSON.parse(await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${ref}`])) as {
    layers: Descriptor[];
  };
  const config = JSON.parse(
    await skopeo(['inspect', '--config', '--raw', '--tls-verify=false', `docker://${ref}`]),
  ) as { rootfs: { diff_ids: string[] } };
  return { ref, layers: raw.layers, chains: chainIds(config.rootfs.diff_ids) };
}

/** The daemon's snapshot directories (ids) with `path` in their layer. */
async function snapshotsWith(path: string): Promise<string[]> {
  const dir = join(sociRoot(), 'snapshots');
  const ids: string[] = [];
  for (const id of await readdir(dir)) {
    if (await stat(join(dir, id, 'fs', path)).catch(() => undefined)) ids.push(id);
  }
  return ids.sort();
}

/** The largest regular file below `dir` (bytes), 0 when there is none (or it went meanwhile). */
async function largestFile(dir: string): Promise<number> {
  let largest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true }).catch(() => [])) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) largest = Math.max(largest, await largestFile(path));
    else if (entry.isFile())
      largest = Math.max(largest, (await stat(path).catch(() => undefined))?.size ?? 0);
  }
  return largest;
}

// ---- what a container sees ----

const SAMPLE = [1, 2, 19, 20, 333, 777, 1000, 1500, 1998, 1999];

/** A script printing what `expectedView` says a container of the app image must see. */
const VIEW_SCRIPT = [
  'cd /',
  `${BB} md5sum data/big.bin data/hard.bin data/soft.bin ${SAMPLE.map((i) => `data/small/d${i % 20}/f${i}.txt`).join(' ')}`,
  `${BB} readlink data/soft.bin`,
  `${BB} readlink etc/app-link`,
  `${BB} cat etc/app-link etc/image-name opt/app/kept-name.txt`,
  `${BB} stat -c %h data/big.bin`,
  `[ "$(${BB} stat -c %i data/big.bin)" = "$(${BB} stat -c %i data/hard.bin)" ] && echo hardlink-shares-inode`,
  `${BB} ls -1 opt/app opt/app/sub`,
  'for f in etc/doomed.txt etc/doomed-dir data/small/d0/f0.txt opt/app/old-1.txt opt/app/sub/old-2.txt; do if [ -e $f ] || [ -L $f ]; then echo "present $f"; else echo "absent $f"; fi; done',
  `echo "small files: $(${BB} find data/small -type f | ${BB} wc -l)"`,
  `echo "whiteout names: $(${BB} ls -a1 etc data/small/d0 opt/app | ${BB} grep -c '^\\.wh\\.')"`,
].join('\n');

function expectedView(files: AppFiles): string {
  const sample = SAMPLE.map((i) => `data/small/d${i % 20}/f${i}.txt`);
  return [
    `${md5(files.big)}  data/big.bin`,
    `${md5(files.big)}  data/hard.bin`,
    `${md5(files.big)}  data/soft.bin`,
    ...sample.map((p) => `${md5(files.small.get(`/${p}`)!)}  ${p}`),
    'big.bin',
    '/opt/app/new.txt',
    `upper content of ${files.name}`,
    files.name,
    'upper version',
    '2',
    'hardlink-shares-inode',
    'opt/app:',
    '-early.txt',
    'kept-name.txt',
    'new.txt',
    'sub',
    '',
    'opt/app/sub:',
    'new-2.txt',
    'absent etc/doomed.txt',
    'absent etc/doomed-dir',
    'absent data/small/d0/f0.txt',
    'absent opt/app/old-1.txt',
    'absent opt/app/sub/old-2.txt',
    'small files: 1999',
    'whiteout names: 0',
    '',
  ].join('\n');
}

/** Lines of the daemon's log (pino JSON) with `msg`, parsed. */
function daemonLog(msg: string): Record<string, unknown>[] {
  return stack.daemon
    .output()
    .split('\n')
    .filter((l) => l.includes(`"msg":"${msg}"`))
    .map((l) => JSON.parse(l) as Record<string, unknown>);
}

// ---- the stack ----

beforeAll(async () => {
  stack = await startStack({ backgroundFetch: false });
  proxy = await startFaultProxy(stack.registry);
  app = await buildAppImage('no-index-app', 41);
  zstdApp = await buildAppImage('no-index-zstd', 43);
}, 300_000);

afterAll(async () => {
  await proxy?.stop();
  await stack?.stop();
  for (const image of built) await image.cleanup();
}, 120_000);

const release = containerdUnderTest();

describe(`images without a SOCI index: the daemon pulls and unpacks them (containerd ${release.version})`, () => {
  it('pulls every layer itself: whiteouts, an opaque directory, 2,000 small files, a 20 MB file, links', async () => {
    // Through the (faultless) proxy, to see the daemon's requests.
    const ref = await pushLayout(app.image, { host: proxy.host, repository: 'noindex/app', tag: 'v1' });
    const pushed = await inspectPushed(ref);
    expect(pushed.layers).toHaveLength(4);
    const seenBefore = proxy.requests.length;
    const unpackedBefore = await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' });
    const fallbacksBefore = await stack.metric('soci_fallbacks_total');

    const report = await stack.pull(ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote', 'remote']);
    expect(report.layers.every((l) => l.bytesFetched === 0)).toBe(true);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(unpackedBefore + 4);
    expect(await stack.metric('soci_fallbacks_total')).toBe(fallbacksBefore);
    const unpacked = daemonLog('layer fetched and unpacked').filter((l) =>
      pushed.layers.some((d) => d.digest === l.layer),
    );
    expect(unpacked.map((l) => l.layer).sort()).toEqual(pushed.layers.map((d) => d.digest).sort());
    // The daemon fetched the 20 MB layer in range requests, and only so: 1 MiB first, then
    // doubling up to the 8 MiB chunk size.
    const big = pushed.layers[3]!;
    const bigGets = proxy.requests
      .slice(seenBefore)
      .filter((r) => r.method === 'GET' && r.path === `/v2/noindex/app/blobs/${big.digest}`);
    const bounds = [0, 1, 3, 7, 15].map((m) => m * MiB).concat(big.size);
    expect(bigGets.map((r) => r.range).sort()).toEqual(
      bounds
        .slice(1)
        .map((end, i) => `bytes=${bounds[i]}-${end - 1}`)
        .sort(),
    );
    expect(await leftovers()).toEqual([]);
    expect(await committedSnapshots()).toEqual(expect.arrayContaining(pushed.chains));

    expect(await stack.runContainer(ref, [BB, 'sh', '-c', VIEW_SCRIPT])).toBe(expectedView(app.files));
  }, 120_000);

  it('an empty layer it unpacked stays usable across a restart while the registry is down', async () => {
    const base = await buildBusyboxImage([
      { '/bin/busybox': { busybox: true }, '/etc/motd': 'empty on top\n' },
    ]);
    // BuildKit's empty layer: a tar of nothing but its end-of-archive blocks.
    const image = await appendLayers(base, [Buffer.alloc(1024)]);
    built.push(image);
    const ref = await pushLayout(image, { host: proxy.host, repository: 'noindex/empty', tag: 'v1' });
    const report = await stack.pull(ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote']);
    let down = true;
    const isEmptyImage = (_method: string, path: string) => down && path.startsWith('/v2/noindex/empty/');
    proxy.inject(
      ...Array.from({ length: 500 }, () => ({ kind: 'status' as const, status: 503, match: isEmptyImage })),
    );
    const seenBefore = proxy.requests.length;
    try {
      await stack.restartDaemon();
      expect(await stack.runContainer(ref, [BB, 'cat', '/etc/motd'])).toBe('empty on top\n');
      // Nothing was asked of the registry for it: the layer was kept as it is.
      expect(proxy.requests.slice(seenBefore).filter((r) => r.path.startsWith('/v2/noindex/empty/'))).toEqual(
        [],
      );
    } finally {
      down = false;
    }
  }, 180_000);

  it('pulls zstd layers (soci pull and CRI) and the container reads them right', async () => {
    const repoRef = (host: string) => `${host}/noindex/zstd:zstd`;
    const pushZstd = (host: string) =>
      skopeo([
        'copy',
        '--quiet',
        '--dest-compress-format=zstd',
        '--dest-tls-verify=false',
        `oci:${zstdApp.image.layout}:${zstdApp.image.tag}`,
        `docker://${repoRef(host)}`,
      ]);
    await pushZstd(stack.registry.host);
    const pushed = await inspectPushed(repoRef(stack.registry.host));
    expect(pushed.layers.map((l) => l.mediaType)).toEqual([ZSTD_LAYER, ZSTD_LAYER, ZSTD_LAYER, ZSTD_LAYER]);

    const unpackedBefore = await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' });
    const fallbacksBefore = await stack.metric('soci_fallbacks_total');
    const report = await stack.pull(pushed.ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote', 'remote']);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(unpackedBefore + 4);
    expect(await stack.metric('soci_fallbacks_total')).toBe(fallbacksBefore);
    // Decoded as zstd by the daemon (the zstd tool or fzstd), not handed to containerd.
    const decoders = daemonLog('layer fetched and unpacked')
      .filter((l) => pushed.layers.some((d) => d.digest === l.layer))
      .map((l) => l.decoder);
    expect(decoders).toHaveLength(4);
    for (const decoder of decoders) expect(decoder).toMatch(/^f?zstd$/);
    expect(await leftovers()).toEqual([]);
    expect(await stack.runContainer(pushed.ref, [BB, 'sh', '-c', VIEW_SCRIPT])).toBe(
      expectedView(zstdApp.files),
    );

    // The same through containerd's CRI plugin (the kubelet's path), in a stack of its own.
    const cri = await startCriStack();
    try {
      await pushZstd(cri.registry.host);
      const criRef = repoRef(cri.registry.host);
      await cri.crictl(['pull', criRef]);
      expect(await cri.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(4);
      expect(await cri.metric('soci_fallbacks_total')).toBe(0);
      // containerd fetched none of the layers: the daemon did.
      const content = (await cri.containerd.ctr(['content', 'ls', '-q'])).stdout;
      for (const layer of pushed.layers) expect(content).not.toContain(layer.digest);
      const id = `zstd-cri-${process.pid}`;
      const out = await cri.containerd.ctr([
        'run',
        '--rm',
        '--snapshotter',
        'soci',
        criRef,
        id,
        BB,
        'sh',
        '-c',
        VIEW_SCRIPT,
      ]);
      expect(out.stdout).toBe(expectedView(zstdApp.files));
    } finally {
      await cri.stop();
    }
  }, 240_000);

  it('a layer whose bytes do not match its digest never becomes a snapshot; the pull can be retried', async () => {
    const image = await buildBusyboxImage([
      { '/bin/busybox': { busybox: true }, '/etc/image-name': 'corrupt\n' },
      { '/etc/motd': 'below the corrupted layer\n' },
      { '/data/big.bin': noiseBytes(12 * MiB, 47) },
    ]);
    built.push(image);
    // Pushed through the proxy, so that the image ref (and with it the daemon) names the proxy.
    const ref = await pushLayout(image, { host: proxy.host, repository: 'noindex/corrupt', tag: 'v1' });
    const pushed = await inspectPushed(ref);
    const bad = pushed.layers[2]!;
    const badPath = `/v2/noindex/corrupt/blobs/${bad.digest}`;
    let corrupting = true;
    const isBad = (method: string, path: string) => corrupting && method === 'GET' && path === badPath;
    proxy.inject(...Array.from({ length: 100 }, () => ({ kind: 'corrupt-body' as const, match: isBad })));
    const seenBefore = proxy.requests.length;
    const failedBefore = await stack.metric('soci_fallbacks_total', { reason: 'unpack-failed' });
    const unpackedBefore = await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' });

    const failure = await stack.pull(ref).then(
      () => 'the pull succeeded',
      (err: Error) => err.message,
    );
    // pullImage's own fetch of the layer, after the daemon's fallback, failed its digest check.
    expect(failure).toContain(`expected digest ${bad.digest} but the bytes received hash to sha256:`);
    // Corrupted: the daemon's range requests (12 MiB: 1, 2, 4 MiB and the rest) and the fallback's whole-blob GET.
    const badGets = proxy.requests.slice(seenBefore).filter((r) => isBad(r.method, r.path));
    expect(badGets.filter((r) => r.range).length).toBeGreaterThanOrEqual(2);
    expect(badGets.filter((r) => !r.range).length).toBeGreaterThanOrEqual(1);
    expect(await stack.metric('soci_fallbacks_total', { reason: 'unpack-failed' })).toBeGreaterThanOrEqual(
      failedBefore + 1,
    );
    const failures = daemonLog('fetching and unpacking the layer failed; containerd pulls it');
    expect(
      failures.some((l) => l.layer === bad.digest && JSON.stringify(l.err).includes('DIGEST_MISMATCH')),
    ).toBe(true);
    // The layers below were unpacked; the corrupted one is not a snapshot, nor in staging.
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(unpackedBefore + 2);
    expect(await committedSnapshots()).not.toContain(pushed.chains[2]);
    expect(await leftovers()).toEqual([]);
    // The failed pull's lease is gone: once containerd collected what it left, the daemon holds
    // nothing of the layer either (the fallback's active snapshot included).
    await collectGarbage();
    expect(await committedSnapshots()).not.toContain(pushed.chains[2]);
    expect((await daemonSnapshots()).filter((s) => s.labels[LAYER_LABEL] === bad.digest)).toEqual([]);

    corrupting = false;
    const report = await stack.pull(ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote']);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(unpackedBefore + 5);
    expect(await committedSnapshots()).toContain(pushed.chains[2]);
    expect(await leftovers()).toEqual([]);
    expect(await stack.runContainer(ref, [BB, 'md5sum', '/data/big.bin'])).toBe(
      `${md5(noiseBytes(12 * MiB, 47))}  /data/big.bin\n`,
    );
  }, 120_000);

  it('a pull interrupted by a daemon crash mid-unpack leaves nothing behind and can be done again', async () => {
    const big = noiseBytes(20 * MiB, 53);
    const image = await buildBusyboxImage([
      { '/bin/busybox': { busybox: true }, '/etc/image-name': 'interrupted\n' },
      { '/data/big.bin': big },
      { '/etc/motd': 'above the interrupted layer\n' },
    ]);
    built.push(image);
    const ref = await pushLayout(image, { host: proxy.host, repository: 'noindex/interrupted', tag: 'v1' });
    const pushed = await inspectPushed(ref);
    const slowPath = `/v2/noindex/interrupted/blobs/${pushed.layers[1]!.digest}`;
    // The first range (1 MiB) arrives, the later ones stall: the daemon is unpacking the layer.
    let stalling = true;
    const current = () => proxy.requests.at(-1);
    const isSlow = (method: string, path: string) =>
      stalling && method === 'GET' && path === slowPath && !current()?.range?.startsWith('bytes=0-');
    proxy.inject(
      ...Array.from({ length: 20 }, () => ({
        kind: 'stall-body' as const,
        afterBytes: 64 * 1024,
        match: isSlow,
      })),
    );
    const seenBefore = proxy.requests.length;
    const bigBefore = await snapshotsWith('data/big.bin');

    const pulling = stack.pull(ref).then(
      () => 'the pull succeeded',
      (err: Error) => err.message,
    );
    const staging = join(sociRoot(), 'staging');
    const stalled = () =>
      proxy.requests
        .slice(seenBefore)
        .filter((r) => r.path === slowPath && r.range && !r.range.startsWith('bytes=0-'));
    await waitUntil(
      'the bottom layer committed, the next one half unpacked and stalled',
      async () =>
        stalled().length >= 2 &&
        (await largestFile(staging)) >= MiB / 2 &&
        (await committedSnapshots()).includes(pushed.chains[0]!),
      60_000,
    );

    let leftByTheKilled: string[] = [];
    await stack.restartDaemon(async () => {
      leftByTheKilled = await leftovers();
    }, 'SIGKILL');
    expect(await pulling).not.toBe('the pull succeeded');
    stalling = false;
    // The new daemon empties staging as it starts (the killed one left the half layer there, and
    // the one above it staged whole but never claimed).
    expect(leftByTheKilled.length).toBeGreaterThanOrEqual(2);
    await waitUntil(
      'staging emptied by the restarted daemon',
      async () => (await leftovers()).length === 0,
      10_000,
    );
    // Neither containerd nor the daemon has the interrupted layer (or the one above) as a
    // snapshot, and no part of it landed in a snapshot directory. (The killed Prepare's active
    // snapshot stays with the daemon, its directory empty, until containerd collects it: it
    // tried while the daemon was down.)
    const committed = await committedSnapshots();
    expect(committed).not.toContain(pushed.chains[1]);
    expect(committed).not.toContain(pushed.chains[2]);
    const interrupted = pushed.layers.slice(1).map((l) => l.digest);
    expect(
      (await daemonSnapshots()).filter(
        (s) => s.kind === 'COMMITTED' && interrupted.includes(s.labels[LAYER_LABEL] ?? ''),
      ),
    ).toEqual([]);
    expect(await snapshotsWith('data/big.bin')).toEqual(bigBefore);
    await collectGarbage(); // settles what the failed pull left: the retry does not race it

    const report = await stack.pull(ref);
    expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'remote']);
    // The restarted daemon unpacked the interrupted layer and the one above anew (the bottom one
    // too, unless containerd could not collect it while the daemon was down: then it was there).
    const unpacked = daemonLog('layer fetched and unpacked').map((l) => l.layer);
    expect(unpacked).toEqual(expect.arrayContaining(interrupted));
    expect(await leftovers()).toEqual([]);
    expect(
      await stack.runContainer(ref, [BB, 'sh', '-c', `${BB} md5sum /data/big.bin && ${BB} cat /etc/motd`]),
    ).toBe(`${md5(big)}  /data/big.bin\nabove the interrupted layer\n`);
  }, 180_000);
});
