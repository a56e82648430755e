import { digestOf, hostPlatform } from '@soci-ts/oci-referrers';
import { fileSpans, findFile, spansForRange, type Ztoc } from '@soci-ts/ztoc';

import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

import {
  type BuiltSociIndex,
  buildSociIndex,
  formatPrefetchEntry,
  LayoutSource,
  loadImageRoot,
  type PrefetchSpan,
  parsePrefetch,
  parsePrefetchList,
  planPrefetch,
  selectPlatformImage,
} from '../src/index.js';
import { buildFixtureImage, type FixtureImage } from './fixture.js';

let image: FixtureImage;
let ztocs: (Ztoc | undefined)[];

async function build(prefetch?: string[]): Promise<BuiltSociIndex> {
  const source = new LayoutSource(image.layout, image.tag);
  const platformImage = await selectPlatformImage(source, await loadImageRoot(source), hostPlatform());
  return buildSociIndex(source, platformImage, { minLayerSize: 1000, spanSize: 32768, prefetch });
}

beforeAll(async () => {
  image = await buildFixtureImage('prefetch');
  ztocs = (await build()).layers.map((l) => l.ztoc?.ztoc);
});
afterAll(() => image?.cleanup());

/** Which layer's copy of each fixture file the merged tree shows (bottom 0, tiny 1, top 2). */
const winners: Record<string, [layer: number, dataPath: string]> = {
  '/bin/tool': [0, 'bin/tool'],
  '/usr/share/big.txt': [0, 'usr/share/big.txt'],
  '/usr/lib/libthing.so': [0, 'usr/lib/libthing.so.1'], // symlink
  '/usr/lib/hard': [0, 'usr/lib/libthing.so.1'], // hardlink
  '/opt/app/one': [0, 'opt/app/one'], // hidden by the top layer's opaque dir: never planned
  '/etc/link-to-data': [2, 'data/sub/a'], // absolute symlink into the top layer
  '/data/blob': [2, 'data/blob'],
  '/etc/config': [2, 'etc/config'],
};

/** The tar entry holding a file's bytes: GNU tar stores the data once, later names are hardlinks. */
function dataPath(ztoc: Ztoc, path: string): string {
  const entry = findFile(ztoc, path);
  return entry.type === 'hardlink' ? entry.linkname : path;
}

const spanIds = (ranges: PrefetchSpan[]) =>
  ranges.flatMap((r) => Array.from({ length: r.endSpan - r.startSpan + 1 }, (_, i) => r.startSpan + i));

describe('planPrefetch', () => {
  it('lists every span of every listed file once, in first-asked order, in the layer that wins', () => {
    const paths = Object.keys(winners).filter((p) => p !== '/opt/app/one');
    fc.assert(
      fc.property(fc.shuffledSubarray(paths), (listed) => {
        const plan = planPrefetch(ztocs, listed);
        expect(plan.missing).toEqual([]);
        const expected = new Map<number, number[]>();
        for (const listedPath of listed) {
          const [layer, path] = winners[listedPath]!;
          const { startSpan, endSpan } = fileSpans(ztocs[layer]!, dataPath(ztocs[layer]!, path));
          const ids = expected.get(layer) ?? [];
          for (let id = startSpan; id <= endSpan; id++) if (!ids.includes(id)) ids.push(id);
          expected.set(layer, ids);
        }
        expect(new Set(plan.layers.keys())).toEqual(new Set(expected.keys()));
        for (const [layer, ids] of expected) expect(spanIds(plan.layers.get(layer)!)).toEqual(ids);
      }),
      { numRuns: 50 },
    );
  });

  it('a directory means the files under it that the merged tree shows; hidden and absent paths are missing', () => {
    const plan = planPrefetch(ztocs, ['/opt/app', '/etc/old', '/opt/app/one', '/nope', '/usr/share/empty']);
    const three = fileSpans(ztocs[2]!, 'opt/app/three');
    expect(spanIds(plan.layers.get(2)!)).toEqual(spanIds([three]));
    expect(plan.layers.has(0)).toBe(false);
    expect(plan.missing).toEqual(['/etc/old', '/opt/app/one', '/nope', '/usr/share/empty']);
  });

  it('a byte range plans only the spans holding those bytes of the file, clamped to it', () => {
    const big = fileSpans(ztocs[0]!, 'bin/tool'); // 300 kB of noise: many 32 KiB spans
    expect(big.endSpan - big.startSpan).toBeGreaterThan(5);
    const at = (offset: number, length: number) =>
      spanIds(planPrefetch(ztocs, [{ path: '/bin/tool', range: { offset, length } }]).layers.get(0)!);
    const spansOf = (offset: number, length: number) =>
      spanIds([spansForRange(ztocs[0]!, big.file.uncompressedOffset + offset, length)]);
    expect(at(0, 4096)).toEqual(spansOf(0, 4096));
    expect(at(100_000, 100_000)).toEqual(spansOf(100_000, 100_000));
    // Past the end: clamped to the file; wholly past it: nothing, reported as missing.
    expect(at(299_000, 10_000)).toEqual(spansOf(299_000, 1000));
    const past = planPrefetch(ztocs, [{ path: '/bin/tool', range: { offset: 400_000, length: 1 } }]);
    expect(past.layers.size).toBe(0);
    expect(past.missing).toEqual(['/bin/tool\t400000\t1']);
  });

  it('reads lists with comments, blank lines and byte ranges; what it formats it reads back', () => {
    expect(
      parsePrefetchList('# recorded\n/usr/bin/python3\n\n  /etc/passwd  \n/lib/x.so\t4096\t131072\r\n'),
    ).toEqual([
      { path: '/usr/bin/python3' },
      { path: '/etc/passwd' },
      { path: '/lib/x.so', range: { offset: 4096, length: 131072 } },
    ]);
    for (const bad of ['/a\t1', '/a\t1\t2\t3', '/a\t-1\t2', '/a\tx\t2']) {
      expect(() => parsePrefetchList(bad), bad).toThrow(
        expect.objectContaining({ code: 'INDEX_INVALID_PREFETCH_LIST' }),
      );
    }
    const entry = fc.record(
      {
        path: fc.stringMatching(/^\/[^\t\n\r#]{0,30}[^\t\n\r\s]$/),
        range: fc.record({ offset: fc.maxSafeNat(), length: fc.maxSafeNat() }),
      },
      { requiredKeys: ['path'] },
    );
    fc.assert(
      fc.property(fc.array(entry, { maxLength: 10 }), (entries) => {
        expect(parsePrefetchList(entries.map(formatPrefetchEntry).join('\n'))).toEqual(entries);
      }),
    );
  });
});

describe('buildSociIndex with prefetch paths', () => {
  it('writes one prefetch blob per layer, annotated with its layer and stored among the blobs', async () => {
    const built = await build(['/etc/link-to-data', '/bin/tool', '/nope']);
    expect(built.prefetchMissing).toEqual(['/nope']);
    const layers = built.image.manifest.layers;
    expect(built.index.prefetches.map((p) => p.layerDigest)).toEqual([layers[0]!.digest, layers[2]!.digest]);
    const planned = planPrefetch(ztocs, ['/etc/link-to-data', '/bin/tool', '/nope']);
    for (const [i, ref] of built.index.prefetches.entries()) {
      const blob = built.blobs.find((b) => digestOf(b) === ref.digest);
      expect(blob?.length).toBe(ref.size);
      expect(parsePrefetch(blob!)).toEqual(planned.layers.get(i === 0 ? 0 : 2));
    }
    const manifestLayers = JSON.parse(new TextDecoder().decode(built.manifest.bytes)).layers;
    expect(manifestLayers.map((l: { mediaType: string }) => l.mediaType)).toEqual([
      'application/octet-stream',
      'application/octet-stream',
      'application/vnd.amazon.soci.prefetch.v1+json',
      'application/vnd.amazon.soci.prefetch.v1+json',
    ]);
  });
});
