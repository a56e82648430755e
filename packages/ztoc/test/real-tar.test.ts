import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import {
  buildZtoc,
  decodeZtoc,
  encodeZtoc,
  extractFileBytes,
  type FileMetadata,
  parseModTime,
  TarIndexer,
  type Ztoc,
  ZtocReader,
} from '../src/index.js';
import { chunked, fetchFrom, makeTree, type PyEntry, pythonList, run } from './tools.js';

const work = mkdtempSync(join(tmpdir(), 'ztoc-real-'));
const OWNER = ['--owner=alice:3000000', '--group=staff:4000000'];
const FORMATS = {
  gnu: { tree: 'tree', args: ['--format=gnu', ...OWNER] },
  posix: { tree: 'tree', args: ['--format=posix', '--xattrs', '--xattrs-include=*', ...OWNER] },
  ustar: { tree: 'portable', args: ['--format=ustar'] },
} as const;
const COMPRESSORS = {
  'gzip -6': (tar: string) => run('gzip', ['-6', '-n', '-c', tar]),
  pigz: (tar: string) => run('pigz', ['-6', '-c', tar]),
  'two gzip members': (tar: string) => {
    const data = readFileSync(tar);
    const cut = Math.floor(data.length / 2) + 77;
    return Buffer.concat([
      run('gzip', ['-1', '-c'], { input: data.subarray(0, cut) }),
      run('gzip', ['-9', '-c'], { input: data.subarray(cut) }),
    ]);
  },
} as const;

beforeAll(() => {
  makeTree(join(work, 'tree'));
  makeTree(join(work, 'portable'), { portable: true });
  for (const [name, f] of Object.entries(FORMATS)) {
    run('tar', [...f.args, '-cf', join(work, `${name}.tar`), '-C', join(work, f.tree), '.']);
    const out = join(work, `${name}-x`);
    mkdirSync(out);
    run('tar', [
      '-xpf',
      join(work, `${name}.tar`),
      '-C',
      out,
      '--numeric-owner',
      '--xattrs',
      '--xattrs-include=*',
    ]);
  }
});

describe.each(Object.keys(FORMATS))('GNU tar --format=%s', (format) => {
  it.each(Object.keys(COMPRESSORS))('indexes the layer compressed with %s', async (compressor) => {
    const tarPath = join(work, `${format}.tar`);
    const tar = readFileSync(tarPath);
    const blob = COMPRESSORS[compressor as keyof typeof COMPRESSORS](tarPath);
    const ztoc = await buildZtoc(chunked(blob, blob.length), { compression: 'gzip', spanSize: 64 * 1024 });
    expect(ztoc.uncompressedArchiveSize).toBe(tar.length);
    expect(ztoc.compressedArchiveSize).toBe(blob.length);
    expect(ztoc.compressionInfo.spanDigests.length).toBeGreaterThan(20);
    matchesPython(ztoc.toc, pythonList(tarPath));
    await matchesExtractedTree(ztoc, tar, blob, join(work, `${format}-x`));
    const encoded = encodeZtoc(ztoc);
    // Compare the 32 KiB-window checkpoint blob as bytes: toEqual walks big arrays slowly.
    const { compressionInfo, ...rest } = decodeZtoc(encoded);
    expect(Buffer.from(compressionInfo.checkpoints).equals(ztoc.compressionInfo.checkpoints)).toBe(true);
    expect({ ...rest, compressionInfo: { ...compressionInfo, checkpoints: null } }).toEqual({
      ...ztoc,
      compressionInfo: { ...ztoc.compressionInfo, checkpoints: null },
    });
    const reader = new ZtocReader(encoded);
    expect(reader.findFile('big.bin')).toEqual(ztoc.toc.find((f) => f.name === './big.bin'));
  });

  it('indexes the plain tar (uncompressed layer)', async () => {
    const tar = readFileSync(join(work, `${format}.tar`));
    const ztoc = await buildZtoc(chunked(tar, 3), { compression: 'uncompressed', spanSize: 100_000 });
    expect(ztoc.compressedArchiveSize).toBe(tar.length);
    expect(ztoc.compressionInfo.maxSpanId).toBe(Math.ceil(tar.length / 100_000) - 1);
    matchesPython(ztoc.toc, pythonList(join(work, `${format}.tar`)));
    await matchesExtractedTree(ztoc, tar, tar, join(work, `${format}-x`));
  });
});

it('records xattrs and fractional times from PAX headers', async () => {
  const tar = readFileSync(join(work, 'posix.tar'));
  const ztoc = await buildZtoc(chunked(tar), { compression: 'uncompressed' });
  const x = ztoc.toc.find((f) => f.name === './xattrs.txt')!;
  expect(x.xattrs['SCHILY.xattr.user.color']).toBe('blue');
  expect(Object.keys(x.xattrs)).toEqual(Object.keys(x.xattrs).sort());
  expect(ztoc.toc.find((f) => f.name === './small.txt')!.modTime).toBe('2009-02-13T23:31:30.123456789Z');
  expect(ztoc.toc.find((f) => f.name === './medium.bin')!.modTime).toBe('2100-01-01T00:00:00.5Z');
  expect(ztoc.toc.find((f) => f.name === './noperm')!.modTime).toBe('1969-12-31T23:58:20Z');
  expect(ztoc.toc.find((f) => f.name === './')!.type).toBe('dir');
});

it('reads GNU base-256 numbers (large ids, negative time)', async () => {
  const tar = readFileSync(join(work, 'gnu.tar'));
  const ztoc = await buildZtoc(chunked(tar), { compression: 'uncompressed' });
  const f = ztoc.toc.find((e) => e.name === './noperm')!;
  expect([f.uid, f.gid, f.uname, f.modTime]).toEqual([3000000, 4000000, 'alice', '1969-12-31T23:58:20Z']);
});

function matchesPython(toc: FileMetadata[], py: PyEntry[]): void {
  expect(toc.map((f) => stripSlash(f.name))).toEqual(py.map((p) => p.name));
  toc.forEach((f, i) => {
    const p = py[i]!;
    const expected = {
      type: p.type,
      offset: p.offset_data,
      size: p.type === 'reg' ? p.size : 0,
      mode: p.mode,
      uid: p.uid,
      gid: p.gid,
      uname: p.uname,
      gname: p.gname,
      linkname: p.linkname,
      devmajor: p.devmajor,
      devminor: p.devminor,
      xattrs: p.pax_headers,
    };
    const actual = {
      type: f.type,
      offset: f.uncompressedOffset,
      size: f.uncompressedSize,
      mode: f.mode,
      uid: f.uid,
      gid: f.gid,
      uname: f.uname,
      gname: f.gname,
      linkname: f.linkname,
      devmajor: f.devmajor,
      devminor: f.devminor,
      xattrs: f.xattrs,
    };
    expect(actual, f.name).toEqual(expected);
    const t = parseModTime(f.modTime)!;
    expect(t.seconds + t.nanos / 1e9, f.name).toBeCloseTo(p.mtime, 5);
  });
}

/** Every entry agrees with what `tar -x` made of it; every file's bytes come back exactly. */
async function matchesExtractedTree(
  ztoc: Ztoc,
  tar: Uint8Array,
  blob: Uint8Array,
  out: string,
): Promise<void> {
  const fetch = fetchFrom(blob);
  let files = 0;
  for (const f of ztoc.toc) {
    const path = join(out, f.name);
    const st = lstatSync(path, { bigint: true });
    if (f.type === 'hardlink') {
      expect(st.ino, f.name).toBe(lstatSync(join(out, f.linkname), { bigint: true }).ino);
      continue;
    }
    expect(Number(st.uid), f.name).toBe(f.uid);
    expect(Number(st.gid), f.name).toBe(f.gid);
    if (f.type === 'symlink') {
      expect(readlinkSync(path), f.name).toBe(f.linkname);
      continue;
    }
    expect(Number(st.mode & 0o7777n), f.name).toBe(f.mode & 0o7777);
    const t = parseModTime(f.modTime)!;
    expect(st.mtimeNs, f.name).toBe(BigInt(t.seconds) * 1_000_000_000n + BigInt(t.nanos));
    const kind = {
      reg: 'isFile',
      dir: 'isDirectory',
      char: 'isCharacterDevice',
      block: 'isBlockDevice',
      fifo: 'isFIFO',
    }[f.type]!;
    expect((st as unknown as Record<string, () => boolean>)[kind]!(), f.name).toBe(true);
    if (f.type === 'char' || f.type === 'block') {
      expect([Number(st.rdev >> 8n) & 0xfff, Number(st.rdev & 0xffn)]).toEqual([f.devmajor, f.devminor]);
    }
    if (f.type !== 'reg') continue;
    const content = readFileSync(path);
    expect(Number(st.size)).toBe(f.uncompressedSize);
    expect(
      Buffer.from(tar.subarray(f.uncompressedOffset, f.uncompressedOffset + f.uncompressedSize)).equals(
        content,
      ),
      f.name,
    ).toBe(true);
    expect(Buffer.from(await extractFileBytes(ztoc, f.name, fetch)).equals(content), f.name).toBe(true);
    files++;
  }
  expect(files).toBeGreaterThanOrEqual(8);
}

function stripSlash(name: string): string {
  return name.length > 1 ? name.replace(/\/+$/, '') : name;
}

describe('TarIndexer onEntry (the streaming unpacker)', () => {
  it('hands over every entry in stream order before its data, equal to the list finish() gives, for any cuts', async () => {
    const fc = await import('fast-check');
    const tar = readFileSync(join(work, 'posix.tar'));
    const whole = new TarIndexer();
    whole.push(tar);
    const expected = whole.finish();
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 1, max: tar.length - 1 }), { maxLength: 40 }), (cuts) => {
        const seen: FileMetadata[] = [];
        let position = 0;
        const indexer = new TarIndexer({
          onEntry: (entry) => {
            // The header is parsed, its data not yet pushed past.
            expect(entry.uncompressedOffset).toBeGreaterThanOrEqual(0);
            expect(position).toBeLessThanOrEqual(entry.uncompressedOffset + 512);
            seen.push(entry);
          },
        });
        const points = [0, ...new Set(cuts)].sort((a, b) => a - b).concat(tar.length);
        for (let i = 0; i + 1 < points.length; i++) {
          indexer.push(tar.subarray(points[i], points[i + 1]));
          position = points[i + 1]!;
        }
        expect(indexer.finish()).toEqual([]);
        expect(seen).toEqual(expected);
      }),
      { numRuns: 50 },
    );
  });

  it('hands over the raw PAX payloads, so binary values survive', () => {
    const binary = Buffer.from([0x80, 0xff, 0x00, 0xc3, 0x28]);
    const record = (key: string, value: Buffer) => {
      const body = Buffer.concat([Buffer.from(` ${key}=`), value, Buffer.from('\n')]);
      let length = body.length + 1;
      while (String(length).length + body.length !== length) length++;
      return Buffer.concat([Buffer.from(String(length)), body]);
    };
    const pax = record('SCHILY.xattr.user.bin', binary);
    const tar = paxTar(pax);
    let got: { entry: FileMetadata; pax: readonly Uint8Array[] } | undefined;
    const indexer = new TarIndexer({
      onEntry: (entry, raw) => {
        got = { entry, pax: [...raw] };
      },
    });
    indexer.push(tar);
    indexer.finish();
    expect(got?.entry.name).toBe('f');
    expect(got?.entry.xattrs['SCHILY.xattr.user.bin']).toContain('\uFFFD');
    expect(Buffer.concat(got!.pax.map((p) => Buffer.from(p)))).toEqual(pax);
  });
});

/** A ustar archive of one empty file `f` behind a PAX header holding `records`. */
function paxTar(records: Buffer): Buffer {
  const header = (name: string, type: string, size: number) => {
    const h = Buffer.alloc(512);
    h.write(name, 0);
    h.write('0000644\0', 100);
    h.write('0000000\0', 108);
    h.write('0000000\0', 116);
    h.write(`${size.toString(8).padStart(11, '0')}\0`, 124);
    h.write('00000000000\0', 136);
    h.write(type, 156);
    h.write('ustar\0' + '00', 257);
    h.fill(0x20, 148, 156);
    let sum = 0;
    for (const b of h) sum += b;
    h.write(`${sum.toString(8).padStart(6, '0')}\0 `, 148);
    return h;
  };
  const padded = Buffer.concat([records, Buffer.alloc((512 - (records.length % 512)) % 512)]);
  return Buffer.concat([
    header('PaxHeader/f', 'x', records.length),
    padded,
    header('f', '0', 0),
    Buffer.alloc(1024),
  ]);
}
