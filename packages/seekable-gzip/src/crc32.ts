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

/** Continues `crc` (0 for a fresh one) over `data[start, end)`. */
export function crc32(crc: number, data: Uint8Array, start = 0, end = data.length): number {
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
