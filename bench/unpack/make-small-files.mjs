// Writes the small-files tree for bench/unpack into DIR (must not exist): 20,000 regular files of
// 100 B - 16 KiB (log-uniform sizes, text-like content that gzip -6 shrinks about 3x) in 200
// directories (d00..d19/s0..s9), plus 60 symlinks (to files, to directories, one dangling) and 60
// hardlinks. Everything comes from a fixed seed, so the tree (modes and mtimes included) is the
// same on every machine. Prints one JSON line: files, dirs, symlinks, hardlinks, bytes.
import { link, lutimes, mkdir, symlink, utimes, writeFile } from 'node:fs/promises';
import { join } from 'node:path';

const [dest] = process.argv.slice(2);
if (!dest) throw new Error('usage: make-small-files.mjs DIR');

// mulberry32: a small seeded PRNG, enough for "random-ish but deterministic".
let state = 0x5eed1234;
function random() {
  state = (state + 0x6d2b79f5) | 0;
  let t = Math.imul(state ^ (state >>> 15), 1 | state);
  t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
  return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
}
const pick = (list) => list[Math.floor(random() * list.length)];

// A 4 MiB pool of pseudo-text; every file is a header line plus a slice of it at a random offset.
const words = [];
for (let i = 0; i < 4096; i++) {
  const length = 2 + Math.floor(random() * 9);
  let word = '';
  for (let j = 0; j < length; j++) word += String.fromCharCode(97 + Math.floor(random() ** 1.5 * 26));
  words.push(word);
}
const parts = [];
let poolLength = 0;
while (poolLength < 4 << 20) {
  const line = Array.from({ length: 4 + Math.floor(random() * 12) }, () => pick(words)).join(' ');
  const indent = ' '.repeat(2 * Math.floor(random() * 4));
  parts.push(`${indent}${line}${random() < 0.3 ? ` = ${Math.floor(random() * 1e6)};` : ''}\n`);
  poolLength += parts.at(-1).length;
}
const pool = Buffer.from(parts.join(''));

const BASE_MTIME = 1_700_000_000;
const MIN_SIZE = 100;
const MAX_SIZE = 16 << 10;
const files = [];
const dirs = [];
let bytes = 0;
await mkdir(dest);
for (let d = 0; d < 20; d++) {
  const top = `d${String(d).padStart(2, '0')}`;
  for (let s = 0; s < 10; s++) {
    const dir = join(top, `s${s}`);
    await mkdir(join(dest, dir), { recursive: true });
    dirs.push(dir);
    for (let f = 0; f < 100; f++) {
      const name = join(dir, `${pick(words)}-${f}.${pick(['py', 'txt', 'h', 'json', 'so', 'md'])}`);
      const size = Math.round(MIN_SIZE * (MAX_SIZE / MIN_SIZE) ** random());
      const header = Buffer.from(`# ${name} ${size}\n`);
      const offset = Math.floor(random() * (pool.length - size));
      const content = Buffer.concat([header, pool.subarray(offset, offset + size)]).subarray(0, size);
      const mode = pick([0o644, 0o644, 0o644, 0o755, 0o600, 0o444]);
      await writeFile(join(dest, name), content, { mode });
      files.push(name);
      bytes += size;
    }
  }
  dirs.push(top);
}

// Symlinks: relative to a file in the same tree, to a directory, and one dangling.
const symlinks = [];
for (let i = 0; i < 60; i++) {
  const dir = pick(dirs.filter((d) => d.includes('/')));
  const name = join(dir, `link-${i}`);
  const target = i === 0 ? 'does-not-exist' : i % 6 === 0 ? `../../${pick(dirs)}` : `../../${pick(files)}`;
  await symlink(target, join(dest, name));
  symlinks.push(name);
}
// Hardlinks: a second name for a file, in another directory.
for (let i = 0; i < 60; i++) {
  const target = pick(files);
  const name = join(pick(dirs), `hard-${i}`);
  await link(join(dest, target), join(dest, name));
}

// Deterministic mtimes: files (all names of a hardlinked file share one), symlinks, then
// directories (last, so creating their entries does not change them again).
for (const name of [...files, ...symlinks]) {
  const t = BASE_MTIME + Math.floor(random() * 86_400 * 365);
  await lutimes(join(dest, name), t, t);
}
for (const dir of [...dirs].reverse()) {
  const t = BASE_MTIME + Math.floor(random() * 86_400 * 365);
  await utimes(join(dest, dir), t, t);
}
console.log(JSON.stringify({ files: files.length, dirs: dirs.length, symlinks: 60, hardlinks: 60, bytes }));
