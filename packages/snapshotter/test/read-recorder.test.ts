import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type PrefetchEntry, parsePrefetchList } from '@soci-ts/soci-index';
import fc from 'fast-check';
import pino from 'pino';
import { describe, expect, it } from 'vitest';
import { MountReads, ReadRecorder, WHOLE_FILE_LIMIT } from '../src/soci/read-recorder.js';

const BIG = 64 * 1024 * 1024;

/** Byte positions covered by ranges, as a sorted list of disjoint [start, end) pairs. */
function union(ranges: [number, number][]): [number, number][] {
  const out: [number, number][] = [];
  for (const [s, e] of [...ranges].filter(([s, e]) => e > s).sort((a, b) => a[0] - b[0])) {
    const last = out[out.length - 1];
    if (last && s <= last[1]) last[1] = Math.max(last[1], e);
    else out.push([s, e]);
  }
  return out;
}

describe('MountReads', () => {
  it('lists exactly the bytes read from big files, each run first where it started', () => {
    const read = fc.record({
      path: fc.constantFrom('/a.bin', '/b.bin'),
      offset: fc.integer({ min: 0, max: BIG - 1 }),
      length: fc.integer({ min: 1, max: 300_000 }),
    });
    fc.assert(
      fc.property(fc.array(read, { maxLength: 40 }), (reads) => {
        const listed: PrefetchEntry[] = [];
        const mount = new MountReads(
          (e) => listed.push(e),
          () => {},
        );
        for (const r of reads) mount.onRead({ ...r, fileSize: BIG });
        mount.close();
        for (const path of ['/a.bin', '/b.bin']) {
          const want = union(
            reads.filter((r) => r.path === path).map((r) => [r.offset, Math.min(BIG, r.offset + r.length)]),
          );
          const got = union(
            listed
              .filter((e) => e.path === path)
              .map((e) => [e.range!.offset, e.range!.offset + e.range!.length] as [number, number]),
          );
          expect(got).toEqual(want);
        }
        // The first read of each file is listed before anything of a file read later.
        const firstOrder = [...new Set(reads.map((r) => r.path))];
        expect([...new Set(listed.map((e) => e.path))]).toEqual(firstOrder);
      }),
    );
  });

  it('lists what a run grew by once reads pause, while the layer stays mounted', async () => {
    const listed: PrefetchEntry[] = [];
    const mount = new MountReads(
      (e) => listed.push(e),
      () => {},
      20,
    );
    for (let offset = 0; offset < 10 * 131072; offset += 131072) {
      mount.onRead({ path: '/model.bin', offset, length: 131072, fileSize: BIG });
    }
    expect(listed).toEqual([{ path: '/model.bin', range: { offset: 0, length: 131072 } }]);
    await new Promise((r) => setTimeout(r, 60));
    expect(listed).toEqual([
      { path: '/model.bin', range: { offset: 0, length: 131072 } },
      { path: '/model.bin', range: { offset: 131072, length: 9 * 131072 } },
    ]);
    mount.close(); // nothing new to list
    expect(listed).toHaveLength(2);
  });

  it('skips reads it cannot list: paths with tabs, newlines or edge spaces, reads past the end', () => {
    const listed: PrefetchEntry[] = [];
    const mount = new MountReads(
      (e) => listed.push(e),
      () => {},
    );
    for (const path of ['/a\tb', '/a\nb', '/a\r', ' /a', '/a ']) {
      mount.onRead({ path, offset: 0, length: 10, fileSize: 10 });
    }
    mount.onRead({ path: '/big', offset: BIG, length: 4096, fileSize: BIG });
    mount.close();
    expect(listed).toEqual([]);
  });

  it('lists a small file once, whole, and nothing after close', () => {
    const listed: PrefetchEntry[] = [];
    const mount = new MountReads(
      (e) => listed.push(e),
      () => {},
    );
    mount.onRead({ path: '/etc/passwd', offset: 0, length: 4096, fileSize: 900 });
    mount.onRead({ path: '/etc/passwd', offset: 0, length: 4096, fileSize: 900 });
    mount.onRead({ path: '/lib/x.so', offset: 0, length: 4096, fileSize: WHOLE_FILE_LIMIT });
    mount.close();
    mount.onRead({ path: '/late', offset: 0, length: 1, fileSize: 1 });
    expect(listed).toEqual([{ path: '/etc/passwd' }, { path: '/lib/x.so' }]);
  });
});

describe('ReadRecorder', () => {
  it('appends the mounts of one image to one list that soci create reads', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soci-recorder-'));
    try {
      const recorder = new ReadRecorder(join(dir, 'lists'), pino({ enabled: false }));
      const digest = `sha256:${'ab'.repeat(32)}`;
      const lower = recorder.mount(digest);
      const upper = recorder.mount(digest);
      lower.onRead({ path: '/usr/bin/python3', offset: 0, length: 4096, fileSize: 5000 });
      upper.onRead({ path: '/app/main.py', offset: 0, length: 100, fileSize: 100 });
      lower.onRead({ path: '/data/model.bin', offset: 0, length: 4096, fileSize: BIG });
      lower.onRead({ path: '/data/model.bin', offset: 4096, length: 4096, fileSize: BIG });
      await recorder.close();
      const text = await readFile(recorder.fileOf(digest), 'utf8');
      expect(recorder.fileOf(digest)).toBe(join(dir, 'lists', `${'ab'.repeat(32)}.paths`));
      expect(parsePrefetchList(text)).toEqual([
        { path: '/usr/bin/python3' },
        { path: '/app/main.py' },
        { path: '/data/model.bin', range: { offset: 0, length: 4096 } },
        { path: '/data/model.bin', range: { offset: 4096, length: 4096 } },
      ]);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('a list it cannot write turns recording off, and reads go on', async () => {
    const warnings: string[] = [];
    const logger = pino({ level: 'warn' }, { write: (line: string) => warnings.push(line) });
    const recorder = new ReadRecorder('/proc/soci-cannot-write-here', logger);
    const mount = recorder.mount(`sha256:${'cd'.repeat(32)}`);
    mount.onRead({ path: '/a', offset: 0, length: 1, fileSize: 1 });
    mount.onRead({ path: '/b', offset: 0, length: 1, fileSize: 1 });
    await recorder.close();
    expect(warnings).toHaveLength(1);
    expect(warnings[0]).toMatch(/prefetch recording is off/);
  });
});
