import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DiskSpanCache,
  type FileRead,
  type FuseBackend,
  FuseNativeBackend,
  isMounted,
  KeeperFuseBackend,
  LazyFsError,
  type MountedLayer,
  mountRemoteLayer,
} from '../src/index.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FaultyReader,
  FileBlobReader,
  readInChild,
  startKeeperProcess,
  tempDir,
} from './helpers.js';

const FIXTURES = fileURLToPath(new URL('./fixtures/', import.meta.url));
const canFuse = process.getuid?.() === 0 && existsSync('/dev/fuse');
const BIG = 110 * 1024 * 1024;

interface Entry {
  type: string;
  mode: number;
  uid: number;
  gid: number;
  mtime: number;
  nlink: number;
  ino: number;
  size?: number;
  sha256?: string;
  link?: string;
  rdev?: [number, number];
  xattrs: Record<string, string>;
}
type Tree = Record<string, Entry>;

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

async function walk(dir: string): Promise<Tree> {
  const { stdout } = await run('python3', [join(FIXTURES, 'walk.py'), dir]);
  return JSON.parse(stdout) as Tree;
}

async function extract(tarPath: string, dir: string, exclude: string[] = []): Promise<void> {
  await mkdir(dir, { recursive: true });
  await run('tar', [
    '--xattrs',
    '--xattrs-include=*',
    '--same-owner',
    '-p',
    '--numeric-owner',
    ...exclude.map((e) => `--exclude=${e}`),
    '-C',
    dir,
    '-xf',
    tarPath,
  ]);
}

/** What a lazily mounted layer must show for a `tar -x` tree: whiteouts as overlayfs wants them. */
function overlayView(extracted: Tree): Tree {
  const out: Tree = {};
  const opaque: string[] = [];
  for (const [path, entry] of Object.entries(extracted)) {
    const slash = path.lastIndexOf('/');
    const dir = path.slice(0, slash + 1);
    const name = path.slice(slash + 1);
    if (name === '.wh..wh..opq') opaque.push(dir.slice(0, -1));
    else if (name.startsWith('.wh.')) out[dir + name.slice(4)] = { ...entry, type: 'char', rdev: [0, 0] };
    else out[path] = entry;
  }
  for (const dir of opaque) out[dir]!.xattrs = { ...out[dir]!.xattrs, 'trusted.overlay.opaque': '79' };
  return out;
}

/** Strips what legitimately differs between file systems; hardlinks become groups of names. */
function comparable(tree: Tree, options: { inodes: boolean }): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  const groups = new Map<number, string[]>();
  for (const [path, e] of Object.entries(tree)) {
    const { ino, nlink, size, mode, ...rest } = e;
    const base: Record<string, unknown> = { ...rest };
    if (e.type === 'char' && e.rdev?.[0] === 0 && e.rdev?.[1] === 0) {
      // A whiteout: only "character device 0/0" matters to overlayfs.
      out[path] = { type: 'char', rdev: [0, 0] };
      continue;
    }
    base.mode = mode;
    if (e.type !== 'dir') base.size = size;
    if (e.type === 'file' && options.inodes) {
      base.nlink = nlink;
      groups.set(ino, [...(groups.get(ino) ?? []), path]);
    }
    out[path] = base;
  }
  if (options.inodes)
    out['#hardlink-groups'] = [...groups.values()].filter((g) => g.length > 1).map((g) => g.sort());
  return out;
}

describe.skipIf(!canFuse).each(['keeper', 'fuse-native'] as const)(
  'FUSE mount of lazy layers (%s)',
  (backendName) => {
    let work: string;
    let keeper: Awaited<ReturnType<typeof startKeeperProcess>> | undefined;
    let backend: FuseBackend;
    let layerA: BuiltLayer;
    let layerB: BuiltLayer;
    let cache: DiskSpanCache;
    const mounts: MountedLayer[] = [];
    const overlays: string[] = [];

    beforeAll(async () => {
      work = await tempDir('fuse');
      await run('bash', [join(FIXTURES, 'make-trees.sh'), join(work, 'trees')]);
      await writeFile(join(work, 'trees/a/usr/lib/big.bin'), compressibleBytes(BIG, 7));
      layerA = await buildLayer(join(work, 'trees/a'), join(work, 'a'), { spanSize: 1 << 20, gzipLevel: 1 });
      layerB = await buildLayer(join(work, 'trees/b'), join(work, 'b'), { spanSize: 64 * 1024 });
      cache = await DiskSpanCache.open({ root: join(work, 'cache'), budgetBytes: 1 << 30 });
      await rm(join(work, 'trees'), { recursive: true, force: true });
      if (backendName === 'keeper') {
        const socketPath = join(work, 'keeper.sock');
        keeper = await startKeeperProcess(socketPath);
        backend = new KeeperFuseBackend({ socketPath });
      } else {
        backend = new FuseNativeBackend();
      }
    }, 180_000);

    afterAll(async () => {
      for (const dir of overlays) await run('umount', ['-l', dir]).catch(() => {});
      for (const m of mounts) await m.unmount().catch(() => {});
      await keeper?.stop();
      if (work) await rm(work, { recursive: true, force: true });
    });

    async function mount(
      layer: BuiltLayer,
      name: string,
      blob = new FileBlobReader(layer.blobPath, layer.size),
    ) {
      const m = await mountRemoteLayer({
        ztoc: layer.ztoc,
        blob,
        layer: { digest: layer.digest, size: layer.size },
        mountpoint: join(work, 'mnt', name),
        cache,
        background: false,
        backend,
      });
      mounts.push(m);
      return m;
    }

    it('shows each layer exactly as tar -x does (bytes, stat, links, xattrs, whiteouts)', async () => {
      for (const [name, layer] of [
        ['a', layerA],
        ['b', layerB],
      ] as const) {
        const m = await mount(layer, `single-${name}`);
        const expected = overlayView(await walk(await extractTo(layer, `x-${name}`)));
        const actual = await walk(m.mountpoint);
        expect(comparable(actual, { inodes: true })).toEqual(comparable(expected, { inodes: true }));
        expect(Object.keys(actual).length).toBeGreaterThan(5);
      }
    }, 180_000);

    async function extractTo(layer: BuiltLayer, name: string): Promise<string> {
      const dir = join(work, name);
      await extract(layer.tarPath, dir);
      return dir;
    }

    it('presents two layers to overlayfs as the unpacked rootfs', async () => {
      const a = await mount(layerA, 'ovl-a');
      const b = await mount(layerB, 'ovl-b');
      const merged = join(work, 'merged');
      await mkdir(merged, { recursive: true });
      await run('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${b.mountpoint}:${a.mountpoint}`,
        merged,
      ]);
      overlays.push(merged);

      // The expected rootfs: extract the layers in order, applying b's whiteouts to a first.
      const rootfs = join(work, 'rootfs');
      await extract(layerA.tarPath, rootfs);
      const { stdout } = await run('tar', ['-tf', layerB.tarPath]);
      for (const path of stdout.split('\n').filter(Boolean)) {
        const clean = path.replace(/^\.\//, '');
        const slash = clean.lastIndexOf('/');
        const dir = clean.slice(0, slash + 1);
        const name = clean.slice(slash + 1);
        if (name === '.wh..wh..opq') {
          await run('sh', [
            '-c',
            'rm -rf -- "$1"/* "$1"/.[!.]* 2>/dev/null || true',
            'sh',
            join(rootfs, dir),
          ]);
        } else if (name.startsWith('.wh.')) {
          await rm(join(rootfs, dir, name.slice(4)), { recursive: true, force: true });
        }
      }
      await extract(layerB.tarPath, rootfs, ['.wh.*']);

      const expected = await walk(rootfs);
      const actual = await walk(merged);
      for (const tree of [expected, actual]) {
        for (const e of Object.values(tree)) delete e.xattrs['trusted.overlay.opaque'];
      }
      expect(comparable(actual, { inodes: false })).toEqual(comparable(expected, { inodes: false }));
      expect(actual['opq/old1']).toBeUndefined();
      expect(actual['removed.txt']).toBeUndefined();
      expect(actual['opq/new']).toBeDefined();
    }, 180_000);

    it('serves many concurrent readers through the kernel', async () => {
      const m = await mount(layerA, 'concurrent');
      const names = ['usr/bin/multi-span', 'usr/lib/numbers.txt', 'etc/passwd', 'usr/lib/big.bin'];
      const jobs = Array.from({ length: 48 }, (_, i) => {
        const name = names[i % names.length]!;
        return { name, offset: (i * 1_234_567) % 2_000_000, length: 300_000 };
      });
      const got = await readInChild(jobs.map((j) => [join(m.mountpoint, j.name), j.offset, j.length]));
      for (const [i, j] of jobs.entries()) {
        const want = (await readFile(join(work, 'x-a', j.name))).subarray(j.offset, j.offset + j.length);
        expect(got[i], j.name).toBe(sha256(want));
      }
    });

    it('reports every read with the path used, the offset, the length and the file size', async () => {
      const reads: FileRead[] = [];
      const m = await mountRemoteLayer({
        ztoc: layerA.ztoc,
        blob: new FileBlobReader(layerA.blobPath, layerA.size),
        layer: { digest: layerA.digest, size: layerA.size },
        mountpoint: join(work, 'mnt', 'recorded'),
        cache,
        background: false,
        onRead: (read) => reads.push(read),
        backend,
      });
      mounts.push(m);
      // One reader after another (readInChild reads its list concurrently).
      for (const name of ['usr/lib/numbers.txt', 'etc/passwd'])
        await readInChild([[join(m.mountpoint, name), 0, -1]]);
      await readInChild([[join(m.mountpoint, 'usr/lib/big.bin'), 50_000_000, 1000]]);
      const paths = [...new Set(reads.map((r) => r.path))];
      expect(paths).toEqual(['/usr/lib/numbers.txt', '/etc/passwd', '/usr/lib/big.bin']);
      for (const r of reads) expect(r.fileSize).toBe(reads.find((x) => x.path === r.path)!.fileSize);
      expect(reads.find((r) => r.path === '/usr/lib/big.bin')!.fileSize).toBe(BIG);
      // Whole files from 0 on, the slice of big.bin somewhere around where it was asked for.
      const numbers = reads.filter((r) => r.path === '/usr/lib/numbers.txt');
      expect(numbers[0]!.offset).toBe(0);
      const big = reads.filter((r) => r.path === '/usr/lib/big.bin');
      expect(big.some((r) => r.offset <= 50_000_000 && r.offset + r.length >= 50_001_000)).toBe(true);
      expect(big.every((r) => r.offset >= 50_000_000 - (1 << 20))).toBe(true);
    });

    it('refuses writes with EROFS', async () => {
      const m = await mount(layerB, 'readonly');
      for (const script of [
        `open("${m.mountpoint}/new-file", "w")`,
        `open("${m.mountpoint}/replaced.txt", "r+b").write(b"x")`,
        `__import__("os").mkdir("${m.mountpoint}/dir")`,
        `__import__("os").setxattr("${m.mountpoint}/replaced.txt", "user.x", b"1")`,
      ]) {
        const err = await run('python3', ['-c', script]).catch((e: Error) => e);
        expect(String(err), script).toMatch(/Read-only file system/);
      }
    });

    it('answers EIO while the registry serves bad bytes, and the right bytes after', async () => {
      const faulty = new FaultyReader(new FileBlobReader(layerB.blobPath, layerB.size));
      const isolated = await mountRemoteLayer({
        ztoc: layerB.ztoc,
        blob: faulty,
        layer: { digest: layerB.digest, size: layerB.size },
        mountpoint: join(work, 'mnt', 'faulty'),
        background: false,
        retryDelayMs: 1,
        backend,
      });
      mounts.push(isolated);
      const path = join(isolated.mountpoint, 'usr/bin/random-multi-span');
      for (const fault of ['corrupt', 'truncate', 'throw'] as const) {
        faulty.always = fault;
        expect(await readInChild([[path, 0, -1]])).toEqual(['ERR EIO']);
      }
      faulty.always = undefined;
      const want = await readFile(join(work, 'x-b', 'usr/bin/random-multi-span'));
      expect(await readInChild([[path, 0, -1]])).toEqual([sha256(want)]);
      expect(isolated.stats().verifyFailures).toBeGreaterThan(0);
    });

    it('unmounts cleanly, and a failed mount leaves nothing mounted', async () => {
      const m = await mount(layerB, 'unmount-me');
      expect(await isMounted(m.mountpoint)).toBe(true);
      await m.unmount();
      expect(await isMounted(m.mountpoint)).toBe(false);
      await m.unmount(); // twice is fine

      const notADir = join(work, 'a-file');
      await writeFile(notADir, 'x');
      const err = await mountRemoteLayer({
        ztoc: layerB.ztoc,
        blob: new FileBlobReader(layerB.blobPath, layerB.size),
        layer: { digest: layerB.digest, size: layerB.size },
        mountpoint: notADir,
        background: false,
        backend,
      }).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(LazyFsError);
      expect(await isMounted(notADir)).toBe(false);
    });
  },
);
