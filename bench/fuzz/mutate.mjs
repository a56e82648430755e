/**
 * Input mutation for the fuzz workers: a seeded PRNG, byte-level edits (as libFuzzer's default
 * mutators do), JSON-aware edits for JSON targets and a tar checksum fix-up for tar targets, so
 * that most mutated headers get past the checksum into the code that reads their fields.
 */

/** xorshift32: fast, seedable, reproducible runs. */
export function prng(seed) {
  let x = seed >>> 0 || 0x9e3779b9;
  const next = () => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return x >>> 0;
  };
  return { next, below: (n) => (n <= 0 ? 0 : next() % n), chance: (p) => next() / 4294967296 < p };
}

const INTERESTING_8 = [0, 1, 0x7f, 0x80, 0xff, 0x20, 0x30, 0x37, 0x2f, 0x0a, 0x3d];
const INTERESTING_32 = [
  0, 1, 2, 7, 8, 16, 512, 0x7fff, 0x8000, 0xffff, 0x10000, 0x7fffffff, 0x80000000, 0xffffffff,
];
const MAX_INPUT = 1 << 20;

/** One random edit of `data` (a new array); `pool` supplies other inputs to splice with. */
function mutateBytes(data, rng, pool) {
  const n = data.length;
  const at = () => rng.below(n);
  switch (rng.below(12)) {
    case 0: {
      if (n === 0) break;
      const out = data.slice();
      const i = at();
      out[i] ^= 1 << rng.below(8);
      return out;
    }
    case 1: {
      if (n === 0) break;
      const out = data.slice();
      out[at()] = rng.below(256);
      return out;
    }
    case 2: {
      if (n === 0) break;
      const out = data.slice();
      out[at()] = INTERESTING_8[rng.below(INTERESTING_8.length)];
      return out;
    }
    case 3: {
      if (n < 4) break;
      const out = data.slice();
      const view = new DataView(out.buffer);
      const v = INTERESTING_32[rng.below(INTERESTING_32.length)];
      const i = rng.below(n - 3);
      if (rng.chance(0.5)) view.setUint32(i, v, true);
      else view.setUint32(i, v, false);
      return out;
    }
    case 4: {
      if (n < 8) break;
      const out = data.slice();
      const view = new DataView(out.buffer);
      const i = rng.below(n - 7);
      const big = [0n, 1n, 2n ** 53n, 2n ** 63n - 1n, -1n, 2n ** 31n, BigInt(n), BigInt(rng.next())];
      view.setBigInt64(i, big[rng.below(big.length)], true);
      return out;
    }
    case 5: {
      // insert random bytes
      const len = 1 + rng.below(rng.chance(0.1) ? 4096 : 16);
      if (n + len > MAX_INPUT) break;
      const i = rng.below(n + 1);
      const out = new Uint8Array(n + len);
      out.set(data.subarray(0, i));
      for (let k = 0; k < len; k++) out[i + k] = rng.below(256);
      out.set(data.subarray(i), i + len);
      return out;
    }
    case 6: {
      // delete a range
      if (n === 0) break;
      const i = at();
      const len = 1 + rng.below(Math.min(n - i, rng.chance(0.2) ? n : 16));
      const out = new Uint8Array(n - len);
      out.set(data.subarray(0, i));
      out.set(data.subarray(i + len), i);
      return out;
    }
    case 7: {
      // duplicate a range in place
      if (n === 0) break;
      const i = at();
      const len = 1 + rng.below(Math.min(n - i, 1024));
      if (n + len > MAX_INPUT) break;
      const out = new Uint8Array(n + len);
      out.set(data.subarray(0, i + len));
      out.set(data.subarray(i), i + len);
      return out;
    }
    case 8: {
      // copy a range over another place
      if (n < 2) break;
      const out = data.slice();
      const from = at();
      const len = 1 + rng.below(Math.min(n - from, 256));
      out.copyWithin(rng.below(n), from, from + len);
      return out;
    }
    case 9: {
      // splice with another input
      const other = pool[rng.below(pool.length)];
      if (!other || other.length === 0) break;
      const i = rng.below(n + 1);
      const j = rng.below(other.length);
      if (i + other.length - j > MAX_INPUT) break;
      const out = new Uint8Array(i + other.length - j);
      out.set(data.subarray(0, i));
      out.set(other.subarray(j), i);
      return out;
    }
    case 10:
      // truncate
      return data.slice(0, rng.below(n + 1));
    default: {
      // an ASCII decimal or octal number over a few bytes (tar fields, JSON numbers, PAX lengths)
      if (n === 0) break;
      const out = data.slice();
      const text = String(rng.chance(0.5) ? rng.next() : rng.below(1000)).padStart(rng.below(12), '0');
      const i = at();
      for (let k = 0; k < text.length && i + k < n; k++) out[i + k] = text.charCodeAt(k);
      return out;
    }
  }
  return data.slice();
}

const JSON_VALUES = [
  () => null,
  () => true,
  () => -1,
  () => 0,
  () => 2 ** 53,
  () => 1e308,
  () => 1.5,
  () => '',
  () => 'sha256:44136fa355b3678a1146ad16f7e8649e94fb4fc21fe77e8310c060f61caaff8a',
  () => '__proto__',
  () => [],
  () => ({}),
  () => ({ __proto__: null, toString: 1 }),
];

const DEEP = '\u0000deep\u0000';
/** Largest text a JSON edit adds (strings repeated, nodes copied): past every limit, and no more. */
const MAX_JSON_EDIT = 6 << 20;

/**
 * A JSON-aware edit: replace, delete, duplicate or deepen a random node. Undefined when the input
 * is not JSON or the edit cannot be written (JSON.stringify and structuredClone recurse).
 */
function mutateJson(data, rng) {
  try {
    return editJson(JSON.parse(new TextDecoder().decode(data)), rng);
  } catch {
    return undefined;
  }
}

function editJson(root, rng) {
  const holder = { root };
  // Walk down a random path, remembering the container and key of the node reached.
  let parent = holder;
  let key = 'root';
  for (let depth = 0; depth < 12; depth++) {
    const node = parent[key];
    if (node === null || typeof node !== 'object') break;
    const keys = Object.keys(node);
    if (keys.length === 0 || rng.chance(0.25)) break;
    parent = node;
    key = keys[rng.below(keys.length)];
  }
  let deep = '';
  switch (rng.below(6)) {
    case 0:
      parent[key] = JSON_VALUES[rng.below(JSON_VALUES.length)]();
      break;
    case 1:
      if (Array.isArray(parent)) parent.splice(Number(key), 1);
      else delete parent[key];
      break;
    case 2: {
      // many copies of the node: too many layers, spans, annotations (a few MiB at most)
      const size = (JSON.stringify(parent[key]) ?? '').length + 1;
      const copies = Math.min(rng.chance(0.01) ? 5000 : 1 + rng.below(8), Math.ceil(MAX_JSON_EDIT / size));
      parent[key] = Array.from({ length: copies }, () => structuredClone(parent[key]));
      break;
    }
    case 3: {
      // deep nesting, spliced in as text (JSON.stringify would recurse as deep)
      const depth = rng.chance(0.01) ? 100_000 : 1 + rng.below(64);
      deep = `${'['.repeat(depth)}${JSON.stringify(parent[key]) ?? 'null'}${']'.repeat(depth)}`;
      parent[key] = DEEP;
      break;
    }
    case 4:
      parent[key] =
        typeof parent[key] === 'string'
          ? parent[key].repeat(
              Math.min(2 + rng.below(300), Math.ceil(MAX_JSON_EDIT / (parent[key].length + 1))),
            )
          : String(parent[key]);
      break;
    default:
      parent[key] = typeof parent[key] === 'number' ? -parent[key] || parent[key] + 0.5 : rng.next();
  }
  let text = JSON.stringify(holder.root) ?? 'null';
  if (deep) text = text.replace(JSON.stringify(DEEP), () => deep);
  return new TextEncoder().encode(text);
}

/** Recomputes the checksum of every 512-byte block that has a ustar magic or a plausible checksum field. */
function fixTarChecksums(data) {
  for (let at = 0; at + 512 <= data.length; at += 512) {
    const block = data.subarray(at, at + 512);
    const magic = block[257] === 0x75 && block[258] === 0x73 && block[259] === 0x74;
    const octal = block[148] >= 0x30 && block[148] <= 0x37;
    if (!magic && !octal) continue;
    let sum = 8 * 0x20;
    for (let i = 0; i < 512; i++) if (i < 148 || i >= 156) sum += block[i];
    const text = `${sum.toString(8).padStart(6, '0')}\0 `;
    for (let i = 0; i < 8; i++) block[148 + i] = text.charCodeAt(i);
  }
  return data;
}

/** A mutated copy of `data`: 1 to 8 stacked edits, shaped for the target. */
export function mutate(data, rng, pool, target) {
  let out = data;
  const edits = 1 + rng.below(rng.chance(0.2) ? 8 : 2);
  for (let k = 0; k < edits; k++) {
    // JSON edits parse and rewrite the whole input: only on inputs of a plausible size.
    const json = target.json && out.length < 64 * 1024 && rng.chance(0.5) ? mutateJson(out, rng) : undefined;
    out = json ?? mutateBytes(out, rng, pool);
  }
  if (target.tar && rng.chance(0.85)) out = fixTarChecksums(out === data ? data.slice() : out);
  return out;
}
