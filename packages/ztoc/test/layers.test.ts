import { randomBytes } from 'node:crypto';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { buildZtoc, decodeZtoc, encodeZtoc, extractFileBytes, ztocInfo } from '../src/index.js';
import { chunked, fetchFrom, pythonList, run } from './tools.js';

const work = mkdtempSync(join(tmpdir(), 'ztoc-layers-'));

describe('layers made by other tools', () => {
  it('indexes a layer made by umoci repack', async () => {
    const layout = join(work, 'oci');
    const bundle = join(work, 'bundle');
    run('umoci', ['init', '--layout', layout]);
    run('umoci', ['new', '--image', `${layout}:t`]);
    run('umoci', ['unpack', '--image', `${layout}:t`, bundle]);
    const rootfs = join(bundle, 'rootfs');
    const files: Record<string, Buffer> = {
      'etc/hostname': Buffer.from('zt\n'),
      'usr/lib/big.so': randomBytes(2_500_000),
      'usr/share/empty': Buffer.alloc(0),
      [`opt/${'long'.repeat(40)}/file.txt`]: Buffer.from('long path\n'),
    };
    for (const [rel, data] of Object.entries(files)) {
      mkdirSync(join(rootfs, rel, '..'), { recursive: true });
      writeFileSync(join(rootfs, rel), data);
    }
    run('umoci', ['repack', '--image', `${layout}:t`, bundle]);

    const blob = (digest: string) => readFileSync(join(layout, 'blobs', ...digest.split(':')));
    const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
    const manifest = JSON.parse(blob(index.manifests[0].digest).toString());
    const layer = blob(manifest.layers.at(-1).digest);

    const ztoc = decodeZtoc(
      encodeZtoc(await buildZtoc(chunked(layer), { compression: 'gzip', spanSize: 256 * 1024 })),
    );
    writeFileSync(join(work, 'layer.tar'), run('gzip', ['-dc'], { input: layer }));
    const py = pythonList(join(work, 'layer.tar'));
    expect(ztoc.toc.map((f) => [f.uncompressedOffset, f.type])).toEqual(
      py.map((p) => [p.offset_data, p.type]),
    );
    for (const [rel, data] of Object.entries(files)) {
      const name = ztoc.toc.find((f) => f.name.replace(/^\.?\//, '') === rel)!.name;
      expect(Buffer.from(await extractFileBytes(ztoc, name, fetchFrom(layer))).equals(data), rel).toBe(true);
    }
    const info = ztocInfo(ztoc);
    expect(info.num_spans).toBe(ztoc.compressionInfo.spanDigests.length);
    expect(info.num_multi_span_files).toBeGreaterThanOrEqual(1);
  });
});

describe('random trees', () => {
  const entryArb = fc.record({
    dir: fc.constantFrom('', 'da/', 'da/db/', 'dc/'),
    name: fc.stringMatching(/^f[a-z0-9_.-]{0,40}$/), // 'f' prefix: never a directory's name
    size: fc.oneof(fc.constant(0), fc.nat({ max: 4096 }), fc.nat({ max: 400_000 })),
  });

  it('every file comes back byte for byte through its spans', async () => {
    let round = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.uniqueArray(entryArb, { minLength: 1, maxLength: 25, selector: (e) => e.dir + e.name }),
        fc.constantFrom('gnu', 'posix'),
        fc.integer({ min: 1, max: 9 }),
        fc.integer({ min: 16 * 1024, max: 300 * 1024 }),
        async (entries, format, level, spanSize) => {
          const root = join(work, `tree${round++}`);
          const expected = new Map<string, Buffer>();
          for (const e of entries) {
            mkdirSync(join(root, e.dir), { recursive: true });
            const data = randomBytes(e.size);
            writeFileSync(join(root, e.dir, e.name), data);
            expected.set(`./${e.dir}${e.name}`, data);
          }
          const tar = run('tar', [`--format=${format}`, '-cf', '-', '-C', root, '.']);
          const blob = run('gzip', [`-${level}`, '-c'], { input: tar });
          const ztoc = await buildZtoc(chunked(blob, round), { compression: 'gzip', spanSize });
          expect(ztoc.toc.filter((f) => f.type === 'reg').length).toBe(expected.size);
          for (const [name, data] of expected) {
            const got = await extractFileBytes(ztoc, name, fetchFrom(blob));
            expect(Buffer.from(got).equals(data), name).toBe(true);
          }
          rmSync(root, { recursive: true });
        },
      ),
      { numRuns: 15 },
    );
  });
});
