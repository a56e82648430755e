import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { beforeAll, describe, expect, it } from 'vitest';
import { TarIndexer, ZtocError } from '../src/index.js';
import { makeTree, run } from './tools.js';

const work = mkdtempSync(join(tmpdir(), 'ztoc-tarerr-'));
let tar: Buffer;
/** Where the end-of-archive marker starts. */
let endMarker: number;

beforeAll(() => {
  makeTree(join(work, 'tree'));
  run('tar', ['--format=posix', '--xattrs', '-cf', join(work, 't.tar'), '-C', join(work, 'tree'), '.']);
  tar = readFileSync(join(work, 't.tar'));
  const last = index(tar).at(-1)!;
  endMarker = last.uncompressedOffset + Math.ceil(last.uncompressedSize / 512) * 512;
});

function index(data: Uint8Array, cuts: number[] = []): ReturnType<TarIndexer['finish']> {
  const t = new TarIndexer();
  let p = 0;
  for (const c of [...cuts].sort((a, b) => a - b)) {
    t.push(data.subarray(p, c));
    p = c;
  }
  t.push(data.subarray(p));
  return t.finish();
}

function code(f: () => unknown): string {
  try {
    f();
  } catch (e) {
    if (e instanceof ZtocError) return e.code;
    throw e;
  }
  return 'none';
}

describe('TarIndexer', () => {
  it('gives the same entries whatever the chunking', () => {
    const whole = index(tar);
    fc.assert(
      fc.property(fc.array(fc.nat({ max: tar.length }), { maxLength: 40 }), (cuts) => {
        expect(index(tar, cuts)).toEqual(whole);
      }),
      { numRuns: 100 },
    );
  });

  it('never lists an entry whose bytes were cut off; a cut inside a header or data is ZTOC_TRUNCATED_TAR', () => {
    const whole = index(tar);
    fc.assert(
      fc.property(fc.nat({ max: endMarker - 1 }), (cut) => {
        let listed: ReturnType<TarIndexer['finish']>;
        try {
          listed = index(tar.subarray(0, cut));
        } catch (e) {
          expect(e).toBeInstanceOf(ZtocError);
          expect((e as ZtocError).code).toBe('ZTOC_TRUNCATED_TAR');
          return;
        }
        // Accepted only at a clean entry boundary (or with just the last padding missing), as Go's
        // archive/tar does: what is listed is a prefix of the full listing, all data present.
        expect(listed).toEqual(whole.slice(0, listed.length));
        for (const e of listed) expect(e.uncompressedOffset + e.uncompressedSize).toBeLessThanOrEqual(cut);
        const next = whole[listed.length];
        if (next) expect(next.uncompressedOffset + next.uncompressedSize).toBeGreaterThan(cut - 512);
      }),
      { numRuns: 300 },
    );
    const last = whole.at(-1)!;
    expect(code(() => index(tar.subarray(0, last.uncompressedOffset + last.uncompressedSize - 1)))).toBe(
      last.uncompressedSize > 0 ? 'ZTOC_TRUNCATED_TAR' : 'none',
    );
    expect(index(tar.subarray(0, endMarker))).toEqual(whole);
    expect(code(() => index(tar.subarray(0, endMarker + 1024)))).toBe('none');
  });

  it('says ZTOC_BAD_TAR for a header with a wrong checksum', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 511 }), fc.integer({ min: 1, max: 255 }), (at, delta) => {
        const bad = Buffer.from(tar);
        bad[at] = (bad[at]! + delta) & 0xff;
        // Changing the checksum field itself may leave it matching nothing; any change is caught.
        expect(code(() => index(bad))).toBe('ZTOC_BAD_TAR');
      }),
      { numRuns: 200 },
    );
  });

  it('says ZTOC_BAD_TAR for garbage', () => {
    expect(code(() => index(new Uint8Array(2048).fill(0x41)))).toBe('ZTOC_BAD_TAR');
  });

  it('rejects sparse files with ZTOC_UNSUPPORTED_SPARSE (GNU and PAX sparse formats)', () => {
    const dir = join(work, 'sparse');
    run('mkdir', ['-p', dir]);
    run('truncate', ['-s', '10M', join(dir, 'holes')]);
    writeFileSync(join(dir, 'plain'), 'x');
    for (const args of [['--format=gnu'], ['--format=posix'], ['--format=posix', '--sparse-version=1.0']]) {
      const out = join(work, 'sparse.tar');
      run('tar', [...args, '--sparse', '-cf', out, '-C', dir, '.']);
      expect(
        code(() => index(readFileSync(out))),
        args.join(' '),
      ).toBe('ZTOC_UNSUPPORTED_SPARSE');
    }
  });

  it('keeps a "__proto__" PAX record as a plain key', () => {
    const dir = join(work, 'proto');
    run('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'f'), 'x');
    const out = join(work, 'proto.tar');
    run('tar', ['--format=posix', '--pax-option=__proto__=polluted', '-cf', out, '-C', dir, 'f']);
    const [entry] = index(readFileSync(out));
    expect(Object.getPrototypeOf(entry!.xattrs)).toBe(Object.prototype);
    expect(entry!.xattrs.__proto__).toBe('polluted');
  });
});
