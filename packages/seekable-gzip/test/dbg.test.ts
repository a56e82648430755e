import { expect, test } from 'vitest';
import { buildGzipIndex } from '../src/index.js';
import { chunked, makeFixtures } from './fixtures.js';

test('native vs js index', async () => {
  for (const f of makeFixtures()) {
    for (const spanSize of [1, 5000, 65536, 1 << 20]) {
      for (const max of [1 << 20, 3000]) {
        const a = await buildGzipIndex(chunked(f.gz, max), { spanSize });
        const b = await buildGzipIndex(chunked(f.gz, max), { spanSize, inflater: 'js' });
        const strip = (x: typeof a) => x.index.checkpoints.map((c) => [c.in, c.out, c.bits, Buffer.from(c.window).toString('base64')]);
        expect(strip(a), `${f.name} ${spanSize} ${max}`).toEqual(strip(b));
        expect(a.index.uncompressedSize).toBe(f.plain.length);
      }
    }
  }
});
