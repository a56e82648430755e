import { execFileSync, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { encodeZinfo, WINDOW_SIZE } from '@soci-ts/seekable-gzip';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { encodeZtoc } from '../src/codec/encode.js';
import { decodeZtoc, ZtocReader } from '../src/codec/reader.js';
import { ZtocError } from '../src/errors.js';
import type { Ztoc } from '../src/model.js';
import { ANY_SPAN_SIZE, expectSameZtoc, ztocArb } from './arbitraries.js';
import { forwardEncode } from './forward-builder.js';

const SCHEMA = join(import.meta.dirname, 'fixtures', 'ztoc.fbs');
const hasFlatc = spawnSync('flatc', ['--version']).status === 0;

describe('zTOC codec', () => {
  it('round-trips any zTOC', () => {
    fc.assert(
      fc.property(ztocArb, (z) => {
        expectSameZtoc(decodeZtoc(encodeZtoc(z), ANY_SPAN_SIZE), z);
      }),
      { numRuns: 300 },
    );
  });

  it('reads a zTOC laid out by an independent writer (forward layout, vtables after tables)', () => {
    fc.assert(
      fc.property(ztocArb, (z) => {
        const bytes = forwardEncode(z);
        expect(bytes).not.toEqual(encodeZtoc(z));
        expectSameZtoc(decodeZtoc(bytes, ANY_SPAN_SIZE), z);
      }),
      { numRuns: 200 },
    );
  });

  it('reads fields lazily and finds files by path', () => {
    const z = emptyZtoc();
    z.toc = [
      file('./etc/', 'dir', 512, 0),
      file('./etc/passwd', 'reg', 1024, 20),
      file('usr/bin/sh', 'reg', 2048, 5),
      file('./etc/passwd', 'reg', 3072, 30),
    ];
    z.uncompressedArchiveSize = 10_000;
    const r = new ZtocReader(encodeZtoc(z), ANY_SPAN_SIZE);
    expect(r.fileCount).toBe(4);
    expect(r.fileName(2)).toBe('usr/bin/sh');
    expect(r.findFile('./etc/passwd')?.uncompressedOffset).toBe(3072); // later entry wins
    expect(r.findFile('etc/passwd')?.uncompressedOffset).toBe(3072);
    expect(r.findFile('/usr/bin/sh')?.uncompressedSize).toBe(5);
    expect(r.findIndex('etc')).toBe(0);
    expect(r.findFile('nope')).toBeUndefined();
    expect(r.spanCount).toBe(z.compressionInfo.spanDigests.length);
    expect(r.checkpoints).toEqual(z.compressionInfo.checkpoints);
    expect(() => r.file(4)).toThrow(expect.objectContaining({ code: 'ZTOC_OUT_OF_RANGE' }));
  });

  it('writes version-independent defaults the way flatbuffers readers expect', () => {
    const z = emptyZtoc();
    const r = new ZtocReader(encodeZtoc(z));
    expect(r.algorithm).toBe('gzip');
    expect(r.maxSpanId).toBe(0);
  });
});

describe('zTOC decoding of bad bytes', () => {
  // Files, xattrs and one gzip checkpoint: every prefix is tried, so a small one.
  const sample = fc.sample(
    ztocArb.filter((z) => z.toc.length > 2 && z.compressionInfo.maxSpanId === 0),
    { numRuns: 1, seed: 42 },
  );
  const valid = encodeZtoc(sample[0]!);

  it('gives ZtocError for truncated buffers, never anything else', () => {
    for (let n = 0; n < valid.length; n++) expectZtocErrorOrValue(valid.subarray(0, n));
  });

  it('gives ZtocError (or a value) for corrupted buffers, never a crash', () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }), {
          minLength: 1,
          maxLength: 8,
        }),
        (edits) => {
          const bytes = valid.slice();
          for (const e of edits) bytes[e.at % bytes.length] = e.value;
          expectZtocErrorOrValue(bytes);
        },
      ),
      { numRuns: 2000 },
    );
  });

  it('gives ZtocError for garbage', () => {
    fc.assert(fc.property(fc.uint8Array({ maxLength: 256 }), (bytes) => expectZtocErrorOrValue(bytes)));
  });

  it('rejects negative offsets and files that end past the archive', () => {
    const z = emptyZtoc();
    z.toc = [file('a', 'reg', 512, 100)];
    z.uncompressedArchiveSize = 600;
    expect(() => decodeZtoc(forwardEncode(z))).toThrow(expect.objectContaining({ code: 'ZTOC_INVALID' }));
    z.toc = [file('a', 'reg', -512, 100)];
    z.uncompressedArchiveSize = 1000;
    expect(() => decodeZtoc(forwardEncode(z))).toThrow(expect.objectContaining({ code: 'ZTOC_INVALID' }));
  });
});

describe.skipIf(!hasFlatc)('zTOC codec against flatc', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ztoc-flatc-'));

  it('decodes binaries flatc built from JSON', () => {
    fc.assert(
      fc.property(ztocArb, (z) => {
        writeFileSync(join(dir, 'z.json'), JSON.stringify(toFlatcJson(z)));
        execFileSync('flatc', ['-b', '-o', dir, SCHEMA, join(dir, 'z.json')]);
        expectSameZtoc(decodeZtoc(readFileSync(join(dir, 'z.bin')), ANY_SPAN_SIZE), z);
      }),
      { numRuns: 25 },
    );
  });

  it('writes binaries flatc reads back to the same JSON', () => {
    fc.assert(
      fc.property(ztocArb, (z) => {
        writeFileSync(join(dir, 'ours.bin'), encodeZtoc(z));
        execFileSync('flatc', [
          '--json',
          '--strict-json',
          '--defaults-json',
          '--raw-binary',
          '-o',
          dir,
          SCHEMA,
          '--',
          join(dir, 'ours.bin'),
        ]);
        const json = JSON.parse(readFileSync(join(dir, 'ours.json'), 'utf8'));
        expect(json).toEqual(toFlatcJson(z));
      }),
      { numRuns: 25 },
    );
  });
});

function expectZtocErrorOrValue(bytes: Uint8Array): void {
  try {
    decodeZtoc(bytes);
  } catch (e) {
    if (!(e instanceof ZtocError)) throw e;
    expect(['ZTOC_INVALID', 'ZTOC_OUT_OF_RANGE', 'ZTOC_LIMIT_EXCEEDED']).toContain(e.code);
  }
}

function file(name: string, type: 'reg' | 'dir', offset: number, size: number) {
  return {
    name,
    type,
    uncompressedOffset: offset,
    uncompressedSize: size,
    linkname: '',
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: 'root',
    gname: 'root',
    modTime: '2024-01-02T03:04:05Z',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  };
}

/** A zTOC of a 1-byte gzip blob with one span (a gzip layer always has one) and no files. */
function emptyZtoc(): Ztoc {
  const checkpoint = { in: 1, out: 0, bits: 0, window: new Uint8Array(WINDOW_SIZE) };
  return {
    version: '0.9',
    buildToolIdentifier: 't',
    compressedArchiveSize: 1,
    uncompressedArchiveSize: 0,
    toc: [],
    compressionInfo: {
      algorithm: 'gzip',
      maxSpanId: 0,
      spanDigests: [`sha256:${'0'.repeat(64)}`],
      checkpoints: encodeZinfo({
        spanSize: 1,
        checkpoints: [checkpoint],
        compressedSize: 1,
        uncompressedSize: 0,
      }),
    },
  };
}

/** The zTOC as flatc's JSON (snake_case, all fields, xattrs sorted as stored). */
function toFlatcJson(z: Ztoc) {
  return {
    version: z.version,
    build_tool_identifier: z.buildToolIdentifier,
    compressed_archive_size: z.compressedArchiveSize,
    uncompressed_archive_size: z.uncompressedArchiveSize,
    toc: {
      metadata: z.toc.map((f) => ({
        name: f.name,
        type: f.type,
        uncompressed_offset: f.uncompressedOffset,
        uncompressed_size: f.uncompressedSize,
        linkname: f.linkname,
        mode: f.mode,
        uid: f.uid,
        gid: f.gid,
        uname: f.uname,
        gname: f.gname,
        mod_time: f.modTime,
        devmajor: f.devmajor,
        devminor: f.devminor,
        xattrs: Object.keys(f.xattrs)
          .sort(byCodePoint)
          .map((key) => ({ key, value: f.xattrs[key] })),
      })),
    },
    compression_info: {
      compression_algorithm: z.compressionInfo.algorithm === 'gzip' ? 'Gzip' : 'Uncompressed',
      max_span_id: z.compressionInfo.maxSpanId,
      span_digests: z.compressionInfo.spanDigests,
      checkpoints: [...z.compressionInfo.checkpoints],
    },
  };
}

function byCodePoint(a: string, b: string): number {
  return Buffer.compare(Buffer.from(a), Buffer.from(b));
}
