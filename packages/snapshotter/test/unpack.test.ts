// Local layer unpacker (src/unpack) against GNU tar: the same tar, extracted by `tar -x` and by
// unpackLayer, must give the same tree (whiteouts aside, which become overlayfs whiteouts).
import { createHash, randomBytes } from 'node:crypto';
import {
  link,
  lstat,
  mkdir,
  mkdtemp,
  readdir,
  readFile,
  readlink,
  rm,
  symlink,
  writeFile,
} from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { run } from '@soci-ts/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnpackError, type UnpackErrorCode } from '../src/unpack/errors.js';
import { type UnpackLayerOptions, unpackLayer } from '../src/unpack/unpack-layer.js';

const GZIP = 'application/vnd.oci.image.layer.v1.tar+gzip';
const DOCKER_GZIP = 'application/vnd.docker.image.rootfs.diff.tar.gzip';
const TAR = 'application/vnd.oci.image.layer.v1.tar';
const ZSTD = 'application/vnd.oci.image.layer.v1.tar+zstd';
const TAR_CREATE = ['--xattrs', '--xattrs-include=*', '--format=posix', '--numeric-owner'];
const TAR_EXTRACT = ['-x', '--xattrs', '--xattrs-include=*', '--same-owner', '-p', '--numeric-owner'];

/**
 * The same tests run against the sources (extraction on this thread) and the built bundle (on
 * the worker thread, as the daemon runs it). scripts/test builds before it tests.
 */
const BUNDLE = '../dist/index.js';
const built = (await import(BUNDLE).catch(() => undefined)) as
  | { unpackLayer: typeof unpackLayer }
  | undefined;
const IMPLEMENTATIONS: Array<[string, typeof unpackLayer | undefined]> = [
  ['extracting on this thread (sources)', unpackLayer],
  ['extracting on a worker thread (built bundle)', built?.unpackLayer],
];
let unpack: typeof unpackLayer = unpackLayer;

function useImplementation(impl: typeof unpackLayer | undefined): void {
  beforeAll(() => {
    if (!impl)
      throw new Error('packages/snapshotter/dist is missing: build first (pnpm exec turbo run build)');
    unpack = impl;
  });
  afterAll(() => {
    unpack = unpackLayer;
  });
}

let scratch: string;
let counter = 0;

beforeAll(async () => {
  // Not tmpfs: the tests need user.* and trusted.* xattrs and overlayfs on the same file system.
  scratch = await mkdtemp(join(tmpdir(), 'soci-unpack-test-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

async function freshDir(label: string): Promise<string> {
  const dir = join(scratch, `${label}-${counter++}`);
  await mkdir(dir, { recursive: true });
  return dir;
}

function sha256(bytes: Uint8Array): string {
  return `sha256:${createHash('sha256').update(bytes).digest('hex')}`;
}

/** The blob as a registry response would deliver it: odd-sized chunks. */
async function* chunked(bytes: Uint8Array, size = 7919): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += size) yield bytes.subarray(i, i + size);
}

function unpackBlob(blob: Uint8Array, dest: string, extra: Partial<UnpackLayerOptions> = {}) {
  return unpack({
    blob: chunked(blob),
    digest: sha256(blob),
    size: blob.length,
    mediaType: GZIP,
    dest,
    ...extra,
  });
}

async function expectUnpackError(promise: Promise<unknown>, code: UnpackErrorCode): Promise<UnpackError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  // By name: the bundle has its own copy of the class.
  expect((err as Error | undefined)?.name, `expected UnpackError ${code}`).toBe(UnpackError.name);
  expect((err as UnpackError).code, (err as Error).message).toBe(code);
  return err as UnpackError;
}

async function tarOf(dir: string): Promise<Uint8Array> {
  const out = join(scratch, `tar-${counter++}.tar`);
  await run('tar', [...TAR_CREATE, '-C', dir, '-cf', out, '.']);
  return readFile(out);
}

async function gnuExtract(tarBytes: Uint8Array): Promise<string> {
  const file = join(scratch, `x-${counter++}.tar`);
  await writeFile(file, tarBytes);
  const dest = await freshDir('gnu');
  await run('tar', [...TAR_EXTRACT, '-f', file, '-C', dest]);
  return dest;
}

/** Everything about a file that a layer defines (atime and ctime are not part of it). */
interface NodeFacts {
  type: string;
  mode: string;
  uid: number;
  gid: number;
  size?: number;
  sha?: string;
  target?: string;
  rdev?: string;
  /** Other paths of the same inode (hardlinks). */
  links?: string[];
  xattrs: Record<string, string>;
}

interface Tree {
  facts: Map<string, NodeFacts>;
  mtimeNs: Map<string, bigint>;
}

function typeOf(st: Awaited<ReturnType<typeof lstat>>): string {
  if (st.isDirectory()) return 'dir';
  if (st.isFile()) return 'file';
  if (st.isSymbolicLink()) return 'symlink';
  if (st.isCharacterDevice()) return 'char';
  if (st.isBlockDevice()) return 'block';
  if (st.isFIFO()) return 'fifo';
  return 'other';
}

/** Reads a tree as facts, with xattrs from getfattr (one spawn) and hardlinks from inode numbers. */
async function readTree(root: string): Promise<Tree> {
  const facts = new Map<string, NodeFacts>();
  const mtimeNs = new Map<string, bigint>();
  const inodes = new Map<bigint, string[]>();
  const inodeOf = new Map<string, bigint>();
  const walk = async (rel: string) => {
    for (const name of (await readdir(join(root, rel))).sort()) {
      const path = rel ? `${rel}/${name}` : name;
      const abs = join(root, path);
      const st = await lstat(abs, { bigint: true });
      const type = typeOf(st as never);
      const f: NodeFacts = {
        type,
        mode: (Number(st.mode) & 0o7777).toString(8),
        uid: Number(st.uid),
        gid: Number(st.gid),
        xattrs: {},
      };
      if (type === 'file') {
        const bytes = await readFile(abs);
        f.size = bytes.length;
        f.sha = sha256(bytes);
      }
      if (type === 'symlink') {
        f.target = await readlink(abs);
        delete (f as { mode?: string }).mode; // a symlink's mode is always 777 and cannot be set
      }
      if (type === 'char' || type === 'block') f.rdev = st.rdev.toString();
      if (type !== 'dir' && st.nlink > 1n) {
        inodes.set(st.ino, [...(inodes.get(st.ino) ?? []), path]);
        inodeOf.set(path, st.ino);
      }
      facts.set(path, f);
      mtimeNs.set(path, st.mtimeNs);
      if (type === 'dir') await walk(path);
    }
  };
  await walk('');
  for (const [path, ino] of inodeOf) {
    facts.get(path)!.links = inodes.get(ino)!.filter((p) => p !== path);
  }
  for (const [path, xattrs] of await readXattrs(root)) {
    const f = facts.get(path);
    if (f) f.xattrs = xattrs;
  }
  return { facts, mtimeNs };
}

/** `getfattr -R` of a whole tree: relative path -> name -> hex value. */
async function readXattrs(root: string): Promise<Map<string, Record<string, string>>> {
  const { stdout } = await run('getfattr', [
    '-R',
    '-P',
    '-h',
    '-d',
    '-m',
    '-',
    '-e',
    'hex',
    '--absolute-names',
    root,
  ]);
  const out = new Map<string, Record<string, string>>();
  let current: Record<string, string> | undefined;
  for (const line of stdout.split('\n')) {
    if (line.startsWith('# file: ')) {
      const abs = unquote(line.slice(8));
      current = {};
      out.set(abs === root ? '' : abs.slice(root.length + 1), current);
    } else if (line && current) {
      const eq = line.indexOf('=');
      current[unquote(line.slice(0, eq))] = line.slice(eq + 1);
    }
  }
  return out;
}

/** Undoes getfattr's `\ooo` escapes (which stand for bytes of UTF-8). */
function unquote(text: string): string {
  const bytes: number[] = [];
  for (let i = 0; i < text.length; i++) {
    const m = /^\\([0-7]{3})/.exec(text.slice(i, i + 4));
    if (m) {
      bytes.push(Number.parseInt(m[1]!, 8));
      i += 3;
    } else bytes.push(...Buffer.from(text[i]!, 'utf8'));
  }
  return Buffer.from(bytes).toString('utf8');
}

function isWhiteoutFile(path: string): boolean {
  return path.split('/').at(-1)!.startsWith('.wh.');
}

/**
 * Asserts `ours` equals GNU tar's tree. Times: Node can only set whole microseconds (libuv drops
 * the rest), so ours must be GNU tar's nanosecond time truncated to the microsecond, exactly.
 */
function expectSameTree(ours: Tree, gnu: Tree): void {
  expect(Object.fromEntries(ours.facts)).toEqual(Object.fromEntries(gnu.facts));
  const micros = (times: Map<string, bigint>) =>
    Object.fromEntries([...times].map(([p, ns]) => [p, ns - (ns % 1000n)]));
  expect(Object.fromEntries(ours.mtimeNs)).toEqual(micros(gnu.mtimeNs));
}

/** GNU tar's tree as the overlay layer should look: `.wh.` files gone (the caller adds their conversions). */
function withoutWhiteoutFiles(tree: Tree): Tree {
  const keep = (path: string) => !isWhiteoutFile(path);
  return {
    facts: new Map([...tree.facts].filter(([p]) => keep(p))),
    mtimeNs: new Map([...tree.mtimeNs].filter(([p]) => keep(p))),
  };
}

async function expectEmpty(dir: string): Promise<void> {
  expect(await readdir(dir)).toEqual([]);
}

/** A source tree with every kind of entry a layer holds, made by the real tools. */
async function buildRichTree(): Promise<string> {
  const src = await freshDir('src');
  const sh = async (script: string) => {
    await run('sh', ['-euc', script], { cwd: src });
  };
  await mkdir(join(src, 'dir/sub/deeper'), { recursive: true });
  await writeFile(join(src, 'dir/empty'), '');
  await writeFile(join(src, 'dir/small'), 'hello, layer\n');
  await writeFile(join(src, 'dir/block512'), randomBytes(512));
  await writeFile(join(src, 'dir/sub/big'), randomBytes(3 * 1024 * 1024 + 17));
  await writeFile(join(src, 'dir/sub/deeper/odd'), randomBytes(70_001));
  const longDir = `${'long-directory-name-'.repeat(4)}x/${'another-long-segment-'.repeat(4)}y`;
  await mkdir(join(src, longDir), { recursive: true });
  await writeFile(join(src, longDir, `${'f'.repeat(120)}.txt`), 'long path\n');
  await writeFile(join(src, 'name with spaces & ünïcödé'), 'odd name\n');
  await sh(`
    ln -s small dir/link
    ln -s /etc/passwd dir/abs-link
    ln -s ../nowhere/at/all dir/dangling
    ln dir/sub/big dir/hard
    ln dir/small dir/sub/hard-small
    mkfifo -m 0620 fifo
    mknod -m 0640 null c 1 3
    mknod -m 0600 loop b 7 200
    echo x > xattr-file
    setfattr -n user.greeting -v hello xattr-file
    setfattr -n user.empty xattr-file
    setfattr -n user.hex -v 0x00017f20 xattr-file
    setfattr -n user.binary -v 0x80ff00c3280a3d20 xattr-file
    echo cap > capable && setfattr -n security.capability -v 0x0100000280000000000000000000000000000000 capable
    mkdir xattr-dir && setfattr -n user.dirattr -v on xattr-dir
    mkdir -m 0700 private && touch private/secret
    mkdir sticky && chmod 1777 sticky
    echo run > setuid && chmod 4755 setuid
    echo grp > setgid && chmod 2710 setgid
    echo ro > readonly && chmod 0400 readonly
    mkdir ro-dir && echo in > ro-dir/inside && chmod 0555 ro-dir
    chown 1234:5678 dir/small dir/sub xattr-file
    chown -h 4321:8765 dir/link
    chown 1234:5678 setuid && chmod 4755 setuid
    touch .wh.gone
    mkdir opq && touch opq/.wh..wh..opq && echo new > opq/new
    mkdir -p wh-in-dir && touch wh-in-dir/.wh.old-file
    touch -h -d '2001-02-03 04:05:06.123456789' dir/small dir/link fifo null
    touch -d '1999-12-31 23:59:59.5' dir/sub/deeper dir/sub
    touch -d '2030-01-01 00:00:00' ro-dir private dir
  `);
  return src;
}

describe.each(IMPLEMENTATIONS)('unpackLayer against GNU tar, %s', (_label, impl) => {
  useImplementation(impl);
  let src: string;
  let tarBytes: Uint8Array;
  let gnu: Tree;

  beforeAll(async () => {
    src = await buildRichTree();
    tarBytes = await tarOf(src);
    gnu = await readTree(await gnuExtract(tarBytes));
  });

  /** The unpacked tree must be GNU tar's, with each `.wh.` file turned into its overlay meaning. */
  async function expectOverlayLayer(dest: string, opaqueXattr = 'trusted.overlay.opaque'): Promise<void> {
    const ours = await readTree(dest);
    for (const whiteout of ['gone', 'wh-in-dir/old-file']) {
      expect(ours.facts.get(whiteout), whiteout).toMatchObject({ type: 'char', rdev: '0' });
      ours.facts.delete(whiteout);
      ours.mtimeNs.delete(whiteout);
    }
    const opq = ours.facts.get('opq')!;
    expect(opq.xattrs[opaqueXattr]).toBe('0x79'); // "y"
    delete opq.xattrs[opaqueXattr];
    expectSameTree(ours, withoutWhiteoutFiles(gnu));
    // The `.wh.` files themselves are never created.
    expect([...ours.facts.keys()].filter(isWhiteoutFile)).toEqual([]);
  }

  it('has the entries the test means to cover (the fixture itself is checked)', () => {
    const types = new Set([...gnu.facts.values()].map((f) => f.type));
    expect([...types].sort()).toEqual(['block', 'char', 'dir', 'fifo', 'file', 'symlink']);
    expect(gnu.facts.get('xattr-file')!.xattrs).toMatchObject({
      'user.greeting': '0x68656c6c6f',
      'user.binary': '0x80ff00c3280a3d20',
    });
    expect(gnu.facts.get('capable')!.xattrs).toEqual({
      'security.capability': '0x0100000280000000000000000000000000000000',
    });
    expect(gnu.facts.get('dir/hard')!.links).toEqual(['dir/sub/big']);
    expect(gnu.facts.get('dir/small')).toMatchObject({ uid: 1234, gid: 5678 });
    expect(gnu.facts.get('setuid')).toMatchObject({ mode: '4755', uid: 1234 });
  });

  it('unpacks a gzip layer (GNU gzip) like tar -x', async () => {
    const gz = join(scratch, 'rich.tar.gz');
    await writeFile(join(scratch, 'rich.tar'), tarBytes);
    await run('sh', ['-c', `gzip -c -n -6 ${join(scratch, 'rich.tar')} > ${gz}`]);
    const dest = await freshDir('dest');
    const result = await unpackBlob(await readFile(gz), dest);
    expect(result.entries).toBeGreaterThan(30);
    const fileBytes = [...gnu.facts.entries()]
      .filter(([p, f]) => f.type === 'file' && !isWhiteoutFile(p))
      .map(([p, f]) => ({ p, f }));
    // Hardlinked content is written once; every other regular file's bytes once each.
    const written = fileBytes
      .filter(({ p, f }) => !f.links || f.links.every((l) => l > p))
      .reduce((n, { f }) => n + f.size!, 0);
    expect(result.bytes).toBe(written);
    expect(result.warnings).toEqual([]);
    await expectOverlayLayer(dest);
  });

  it('unpacks a zstd layer (zstd -3, two frames) with the zstd tool and with fzstd alike', async () => {
    const file = join(scratch, 'rich-zstd.tar');
    await writeFile(file, tarBytes);
    // Two frames, as a zstd writer that flushes makes them: the decoders must read on.
    const half = Math.floor(tarBytes.length / 2);
    await writeFile(`${file}.1`, tarBytes.subarray(0, half));
    await writeFile(`${file}.2`, tarBytes.subarray(half));
    await run('sh', [
      '-c',
      `zstd -q -3 -c ${file}.1 > ${file}.zst && zstd -q -3 -c ${file}.2 >> ${file}.zst`,
    ]);
    const blob = await readFile(`${file}.zst`);
    for (const zstd of ['zstd', 'fzstd'] as const) {
      const dest = await freshDir(`dest-${zstd}`);
      const result = await unpackBlob(blob, dest, { mediaType: ZSTD, decoders: { gzip: 'auto', zstd } });
      expect(result.decoder).toBe(zstd);
      await expectOverlayLayer(dest);
    }
  });

  it('unpacks gzip with igzip and with zlib alike, and names the one that ran', async () => {
    const gz = gzipSync(tarBytes);
    for (const gzip of ['igzip', 'zlib'] as const) {
      const dest = await freshDir(`dest-${gzip}`);
      const result = await unpackBlob(gz, dest, { decoders: { gzip, zstd: 'auto' } });
      expect(result.decoder).toBe(gzip);
      await expectOverlayLayer(dest);
    }
  });

  it('unpacks a multi-member gzip (pigz members concatenated) with the Docker media type', async () => {
    const half = Math.floor(tarBytes.length / 2);
    const parts = await Promise.all(
      [tarBytes.subarray(0, half), tarBytes.subarray(half)].map(async (part, i) => {
        const file = join(scratch, `part-${i}`);
        await writeFile(file, part);
        await run('pigz', ['-f', '-k', '-n', file]);
        return readFile(`${file}.gz`);
      }),
    );
    const blob = Buffer.concat(parts);
    for (const gzip of ['igzip', 'zlib'] as const) {
      const dest = await freshDir('dest');
      await unpackBlob(blob, dest, { mediaType: DOCKER_GZIP, decoders: { gzip, zstd: 'auto' } });
      await expectOverlayLayer(dest);
    }
  });

  it('unpacks an uncompressed tar layer, with user.overlay.opaque when asked', async () => {
    const dest = await freshDir('dest');
    await unpackBlob(tarBytes, dest, { mediaType: TAR, opaqueXattr: 'user.overlay.opaque' });
    await expectOverlayLayer(dest, 'user.overlay.opaque');
  });

  it('rejects a wrong digest, a flipped byte, a wrong size and a truncated blob, leaving dest empty', async () => {
    const gz = gzipSync(tarBytes);
    const flipped = Buffer.from(gz);
    flipped[Math.floor(flipped.length / 2)]! ^= 0x40;
    const truncated = gz.subarray(0, gz.length - 1000);
    const cases: Array<[string, Partial<UnpackLayerOptions> & { blob: AsyncIterable<Uint8Array> }]> = [
      ['wrong digest', { blob: chunked(gz), digest: sha256(Buffer.from('other')) }],
      ['flipped byte', { blob: chunked(flipped), digest: sha256(gz), size: gz.length }],
      ['wrong size', { blob: chunked(gz), digest: sha256(gz), size: gz.length + 1 }],
      ['truncated blob', { blob: chunked(truncated), digest: sha256(gz), size: gz.length }],
      ['truncated, no size', { blob: chunked(truncated), digest: sha256(gz) }],
    ];
    for (const [what, options] of cases) {
      const dest = await freshDir('dest');
      const err = await expectUnpackError(
        unpack({ digest: sha256(gz), mediaType: GZIP, dest, ...options }),
        'SNAPSHOTTER_DIGEST_MISMATCH',
      );
      expect(err.message, what).toMatch(/fetch it again/);
      await expectEmpty(dest);
    }
    // No temporary file is left next to dest either.
    expect((await readdir(scratch)).filter((n) => n.includes('.unpack-'))).toEqual([]);
  });

  it('calls a blob that matches its digest but is a truncated gzip BAD_LAYER', async () => {
    const gz = gzipSync(tarBytes);
    for (const gzip of ['igzip', 'zlib'] as const) {
      for (const cut of [gz.length - 8, Math.floor(gz.length * 0.7), 5]) {
        const dest = await freshDir('dest');
        const decoders = { gzip, zstd: 'auto' } as const;
        await expectUnpackError(unpackBlob(gz.subarray(0, cut), dest, { decoders }), 'SNAPSHOTTER_BAD_LAYER');
        await expectEmpty(dest);
      }
    }
    const tarFile = join(scratch, 'cut.tar');
    await writeFile(tarFile, tarBytes);
    await run('zstd', ['-q', '-f', '-3', tarFile, '-o', `${tarFile}.zst`]);
    const zst = await readFile(`${tarFile}.zst`);
    for (const zstd of ['zstd', 'fzstd'] as const) {
      for (const cut of [zst.length - 3, Math.floor(zst.length * 0.7), 5]) {
        const dest = await freshDir('dest');
        const options = { mediaType: ZSTD, decoders: { gzip: 'auto', zstd } } as const;
        await expectUnpackError(unpackBlob(zst.subarray(0, cut), dest, options), 'SNAPSHOTTER_BAD_LAYER');
        await expectEmpty(dest);
      }
    }
    // A complete gzip of a tar cut short is a truncated tar: also BAD_LAYER.
    const dest = await freshDir('dest');
    await expectUnpackError(
      unpackBlob(gzipSync(tarBytes.subarray(0, 300_000)), dest),
      'SNAPSHOTTER_BAD_LAYER',
    );
    await expectEmpty(dest);
  });
});

describe.each(IMPLEMENTATIONS)('unpackLayer arguments and abort, %s', (_label, impl) => {
  useImplementation(impl);
  const tiny = gzipSync(Buffer.alloc(1024));

  it('keeps a name that begins with a byte-order mark (ustar name and PAX path alike)', async () => {
    const bom = '\uFEFF';
    for (const format of ['ustar', 'pax']) {
      const src = await freshDir(`bom-${format}`);
      await mkdir(join(src, `${bom}dir`));
      await writeFile(join(src, `${bom}dir`, `${bom}file`), 'marked\n');
      const out = join(scratch, `bom-${counter++}.tar`);
      // Named without ./ in front, so that the name field begins with the mark.
      await run('tar', [`--format=${format}`, '-C', src, '-cf', out, `${bom}dir`]);
      const dest = await freshDir(`bom-${format}-dest`);
      await unpackBlob(gzipSync(await readFile(out)), dest);
      expect(await readFile(join(dest, `${bom}dir`, `${bom}file`), 'utf8')).toBe('marked\n');
    }
  });

  it('refuses unknown media types before reading anything', async () => {
    const dest = await freshDir('dest');
    for (const mediaType of [
      'application/vnd.oci.image.layer.v1.tar+zstd+gzip',
      'application/json',
      '__proto__',
    ]) {
      const err = await expectUnpackError(
        unpackBlob(tiny, dest, { mediaType }),
        'SNAPSHOTTER_UNSUPPORTED_MEDIA_TYPE',
      );
      expect(err.message).toContain(mediaType);
    }
  });

  it('refuses a malformed digest and a destination that is missing or not empty', async () => {
    const dest = await freshDir('dest');
    await expectUnpackError(unpackBlob(tiny, dest, { digest: 'sha256:abc' }), 'SNAPSHOTTER_BAD_ARGUMENT');
    await expectUnpackError(unpackBlob(tiny, join(dest, 'missing')), 'SNAPSHOTTER_BAD_DESTINATION');
    await writeFile(join(dest, 'occupied'), 'x');
    await expectUnpackError(unpackBlob(tiny, dest), 'SNAPSHOTTER_BAD_DESTINATION');
    expect(await readdir(dest)).toEqual(['occupied']);
  });

  it('stops on abort while the blob stalls, and empties dest', async () => {
    const src = await freshDir('src');
    await writeFile(join(src, 'a'), randomBytes(100_000));
    const gz = gzipSync(await tarOf(src));
    const controller = new AbortController();
    async function* stalling(): AsyncGenerator<Uint8Array> {
      yield gz.subarray(0, 1000);
      controller.abort(new Error('snapshot removed'));
      await new Promise(() => {}); // never sends the rest
    }
    const dest = await freshDir('dest');
    const err = await expectUnpackError(
      unpack({ blob: stalling(), digest: sha256(gz), mediaType: GZIP, dest, signal: controller.signal }),
      'SNAPSHOTTER_ABORTED',
    );
    expect((err.cause as Error).message).toBe('snapshot removed');
    await expectEmpty(dest);
    // An already aborted signal stops before anything happens.
    await expectUnpackError(unpackBlob(gz, dest, { signal: AbortSignal.abort() }), 'SNAPSHOTTER_ABORTED');
  });

  it('stops writing when aborted in the middle of a large file, and nothing lands later', async () => {
    const src = await freshDir('src');
    await writeFile(join(src, 'big'), randomBytes(24 << 20));
    await writeFile(join(src, 'after'), 'after');
    const tar = await tarOf(src);
    const controller = new AbortController();
    async function* halfThenAbort(): AsyncGenerator<Uint8Array> {
      for (let i = 0; i < tar.length / 2; i += 1 << 20) yield tar.subarray(i, i + (1 << 20));
      controller.abort(new Error('pull cancelled'));
      yield tar.subarray(tar.length / 2);
    }
    const dest = await freshDir('dest');
    const options = {
      blob: halfThenAbort(),
      digest: sha256(tar),
      mediaType: TAR,
      dest,
      signal: controller.signal,
    };
    await expectUnpackError(unpack(options), 'SNAPSHOTTER_ABORTED');
    await expectEmpty(dest);
    await new Promise((resolve) => setTimeout(resolve, 300));
    await expectEmpty(dest);
  });

  it('keeps layers apart when several unpack at once and one after another', async () => {
    const layers = await Promise.all(
      [0, 1, 2, 3, 4, 5].map(async (i) => {
        const src = await freshDir(`many-${i}`);
        for (let f = 0; f < 30; f++)
          await writeFile(join(src, `f${f}`), `layer ${i} file ${f}\n`.repeat(50 * (f + 1)));
        return { src, gz: gzipSync(await tarOf(src)) };
      }),
    );
    const check = async ({ src, gz }: (typeof layers)[number]) => {
      const dest = await freshDir('dest');
      await unpackBlob(gz, dest);
      for (let f = 0; f < 30; f++) {
        expect(await readFile(join(dest, `f${f}`), 'utf8')).toBe(await readFile(join(src, `f${f}`), 'utf8'));
      }
    };
    await Promise.all(layers.map(check));
    for (const layer of layers) await check(layer);
    // A failed layer between good ones does not leave its worker unusable.
    await expectUnpackError(
      unpackBlob(gzipSync(Buffer.alloc(5000, 1)), await freshDir('dest')),
      'SNAPSHOTTER_BAD_LAYER',
    );
    await check(layers[0]!);
  });
});

describe('unpackLayer on an overlayfs mount', () => {
  it('hides whiteouted files and the lower contents of opaque directories', async () => {
    const lower = await freshDir('lower');
    await run(
      'sh',
      [
        '-euc',
        'echo old > gone; echo stay > stay; mkdir -p opq sub; echo hidden > opq/old; echo x > sub/file; echo y > sub/kept',
      ],
      { cwd: lower },
    );
    const layerSrc = await freshDir('layer-src');
    await run(
      'sh',
      ['-euc', 'touch .wh.gone; mkdir opq sub; touch opq/.wh..wh..opq sub/.wh.file; echo new > opq/new'],
      { cwd: layerSrc },
    );
    const layer = await freshDir('layer');
    await unpackBlob(gzipSync(await tarOf(layerSrc)), layer);

    const merged = await freshDir('merged');
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${layer}:${lower}`, merged]);
    try {
      expect((await readdir(merged)).sort()).toEqual(['opq', 'stay', 'sub']);
      expect(await readdir(join(merged, 'opq'))).toEqual(['new']);
      expect(await readdir(join(merged, 'sub'))).toEqual(['kept']);
      expect(await readFile(join(merged, 'stay'), 'utf8')).toBe('stay\n');
    } finally {
      await run('umount', [merged]);
    }
    // Without the layer the lower files are visible: the check above can fail.
    await run('mount', ['-t', 'overlay', 'overlay', '-o', `ro,lowerdir=${lower}:${layerSrc}`, merged]);
    try {
      expect(await readdir(join(merged, 'opq'))).toContain('old');
    } finally {
      await run('umount', [merged]);
    }
  });
});

describe('unpackLayer property: random trees', () => {
  const name = fc.constantFrom('a', 'b', 'c', 'dd', 'e e', 'ü', 'x.txt');
  const entry = fc.record({
    path: fc.array(name, { minLength: 1, maxLength: 3 }),
    kind: fc.constantFrom('file', 'file', 'dir', 'symlink', 'hardlink', 'fifo'),
    size: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 600 }), fc.integer({ min: 4000, max: 70_000 })),
    mode: fc.constantFrom(0o644, 0o600, 0o755, 0o4755, 0o1777, 0o400, 0o2750),
    owner: fc.constantFrom([0, 0], [1000, 1000], [1234, 5678]),
    mtime: fc.integer({ min: 0, max: 2_000_000_000 }),
    nanos: fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 999_999_999 })),
    xattr: fc.option(fc.string({ minLength: 0, maxLength: 20 }), { nil: undefined }),
    target: fc.array(name, { minLength: 1, maxLength: 3 }),
  });

  type PropEntry = typeof entry extends fc.Arbitrary<infer T> ? T : never;

  /** Builds the tree on disk; entries whose path clashes with an earlier one are skipped. */
  async function build(entries: PropEntry[]): Promise<string> {
    const root = await freshDir('prop-src');
    const kinds = new Map<string, string>();
    const script: string[] = [];
    const q = (s: string) => `'${s.replaceAll("'", "'\\''")}'`;
    for (const e of entries) {
      const path = e.path.join('/');
      const parents = e.path.slice(0, -1).map((_, i) => e.path.slice(0, i + 1).join('/'));
      if (kinds.has(path) || parents.some((p) => kinds.has(p) && kinds.get(p) !== 'dir')) continue;
      for (const p of parents) {
        if (!kinds.has(p)) {
          kinds.set(p, 'dir');
          await mkdir(join(root, p));
        }
      }
      const files = [...kinds].filter(([, k]) => k === 'file').map(([p]) => p);
      if (e.kind === 'hardlink' && files.length === 0) continue;
      kinds.set(path, e.kind === 'hardlink' ? 'file' : e.kind);
      switch (e.kind) {
        case 'file':
          await writeFile(join(root, path), randomBytes(e.size));
          break;
        case 'dir':
          await mkdir(join(root, path));
          break;
        case 'symlink':
          await symlink(e.target.join('/'), join(root, path));
          break;
        case 'hardlink':
          await link(join(root, files[e.size % files.length]!), join(root, path));
          break;
        case 'fifo':
          script.push(`mkfifo ${q(path)}`);
          break;
      }
      if (e.kind === 'file' || e.kind === 'dir' || e.kind === 'fifo') {
        // user.* xattrs are only allowed on files and directories.
        if (e.xattr !== undefined && e.kind !== 'fifo')
          script.push(`setfattr -n user.p -v ${q(`"${e.xattr}"`)} ${q(path)}`);
        script.push(`chown ${e.owner.join(':')} ${q(path)}`, `chmod ${e.mode.toString(8)} ${q(path)}`);
      }
      script.push(`touch -h -d @${e.mtime}.${String(e.nanos).padStart(9, '0')} ${q(path)}`);
    }
    // Directory times last, as creating children changed them.
    for (const [p, k] of kinds) if (k === 'dir') script.push(`touch -d @${1_000_000 + p.length} ${q(p)}`);
    await run('sh', ['-euc', script.join('\n')], { cwd: root });
    return root;
  }

  it('equals tar -x for random trees', async () => {
    await fc.assert(
      fc.asyncProperty(fc.array(entry, { minLength: 1, maxLength: 14 }), async (entries) => {
        const src = await build(entries);
        const tarBytes = await tarOf(src);
        const gnu = await readTree(await gnuExtract(tarBytes));
        const dest = await freshDir('prop-dest');
        await unpackBlob(gzipSync(tarBytes), dest);
        expectSameTree(await readTree(dest), gnu);
      }),
      { numRuns: 25 },
    );
  });
});
