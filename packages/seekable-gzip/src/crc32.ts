/**
 * CRC-32 (IEEE, as in gzip trailers), slicing-by-8 so the builder's integrity check stays cheap
 * next to inflate. Pure JS: usable in a browser.
 */
const TABLES: Uint32Array[] = makeTables();

function makeTables(): Uint32Array[] {
  const tables: Uint32Array[] = [];
  const t0 = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t0[n] = c >>> 0;
  }
  tables.push(t0);
  for (let t = 1; t < 8; t++) {
    const prev = tables[t - 1]!;
    const cur = new Uint32Array(256);
    for (let n = 0; n < 256; n++) cur[n] = (prev[n]! >>> 8) ^ t0[(prev[n] as number) & 0xff]!;
    tables.push(cur);
  }
  return tables;
}

type Crc32Fn = (crc: number, data: Uint8Array, start: number, end: number) => number;

/**
 * Node's native zlib.crc32 (Node >= 20.15) is ~10x faster than any JS table loop. It is looked up
 * through process.getBuiltinModule, which bundlers do not follow, so browsers just get the JS loop.
 */
function nativeCrc32(): Crc32Fn | null {
  const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
  const zlib = proc?.getBuiltinModule?.('node:zlib') as
    | { crc32?: (data: Uint8Array, value?: number) => number }
    | undefined;
  const native = zlib?.crc32;
  if (typeof native !== 'function') return null;
  return (crc, data, start, end) =>
    end - start < 64 ? crc32Js(crc, data, start, end) : native(data.subarray(start, end), crc);
}

/** Continues `crc` (0 for a fresh one) over `data[start, end)`. */
export const crc32: (crc: number, data: Uint8Array, start?: number, end?: number) => number = (() => {
  const impl = nativeCrc32() ?? crc32Js;
  return (crc: number, data: Uint8Array, start = 0, end = data.length) => impl(crc, data, start, end);
})();

/** Pure JS CRC-32 (exported for tests that compare it against the native one). */
export function crc32Js(crc: number, data: Uint8Array, start = 0, end = data.length): number {
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let c = ~crc;
  let i = start;
  const end8 = end - ((end - start) & 7);
  while (i < end8) {
    const a = (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24)) ^ c;
    c =
      t7[a & 0xff]! ^
      t6[(a >>> 8) & 0xff]! ^
      t5[(a >>> 16) & 0xff]! ^
      t4[a >>> 24]! ^
      t3[data[i + 4] as number]! ^
      t2[data[i + 5] as number]! ^
      t1[data[i + 6] as number]! ^
      t0[data[i + 7] as number]!;
    i += 8;
  }
  while (i < end) c = t0[(c ^ (data[i++] as number)) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
