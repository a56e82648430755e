import { expect, test } from 'vitest';
import { buildGzipIndex, decodeSpan, decodeSpanSync, spanCount, spanRange } from '../src/index.js';
import { chunked, makeFixtures } from './fixtures.js';

test('smoke', async () => {
  for (const f of makeFixtures()) {
    const out: Uint8Array[] = [];
    const { index } = await buildGzipIndex(chunked(f.gz, 100_000), { spanSize: 65536, onData: (c) => out.push(c) });
    const total = Buffer.concat(out);
    expect(Buffer.compare(total, f.plain), f.name).toBe(0);
    for (let s = 0; s < spanCount(index); s++) {
      const r = spanRange(index, s);
      const c = f.gz.subarray(r.compressedStart, r.compressedEnd);
      const want = f.plain.subarray(r.uncompressedStart, r.uncompressedEnd);
      expect(Buffer.compare(decodeSpanSync(index, s, c), want), `${f.name} sync ${s}`).toBe(0);
      expect(Buffer.compare(await decodeSpan(index, s, c), want), `${f.name} native ${s}`).toBe(0);
    }
    console.log(f.name, f.gz.length, f.plain.length, spanCount(index));
  }
});
