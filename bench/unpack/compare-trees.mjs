// Compares the metadata of two extracted trees for bench/unpack/run.sh (file contents are
// compared by `diff -r --no-dereference` in run.sh): the set of paths, and per path the type,
// owner, group, mode, link count, size (not for directories), symlink target and mtime (ns).
// mtimes that differ by less than 1 µs are counted apart (unpackLayer sets times to the µs), and
// so is the mtime of the root directory unless --root-entry says the layer has an entry for it
// (without one, both are the time of the bench's mkdir). Prints a text report; the last line is
// JSON: {"paths", "differences", "subMicrosecondMtimes", "rootMtime"}.
// Usage: node compare-trees.mjs [--root-entry] OURS REFERENCE
import { lstat, readdir, readlink } from 'node:fs/promises';
import { join } from 'node:path';

const args = process.argv.slice(2);
const rootEntry = args[0] === '--root-entry';
const [ours, reference] = rootEntry ? args.slice(1) : args;
if (!reference) throw new Error('usage: compare-trees.mjs OURS REFERENCE');

async function walk(root) {
  const entries = new Map();
  const pending = ['.'];
  while (pending.length) {
    const path = pending.pop();
    const st = await lstat(join(root, path), { bigint: true });
    const type = st.isDirectory()
      ? 'dir'
      : st.isSymbolicLink()
        ? 'symlink'
        : st.isFile()
          ? 'file'
          : st.isCharacterDevice()
            ? 'char'
            : st.isBlockDevice()
              ? 'block'
              : st.isFIFO()
                ? 'fifo'
                : 'other';
    entries.set(path, {
      type,
      uid: st.uid,
      gid: st.gid,
      mode: (st.mode & 0o7777n).toString(8),
      nlink: st.nlink,
      size: type === 'dir' ? null : st.size,
      target: type === 'symlink' ? await readlink(join(root, path)) : null,
      mtimeNs: st.mtimeNs,
    });
    if (type === 'dir') {
      for (const name of await readdir(join(root, path)))
        pending.push(path === '.' ? name : join(path, name));
    }
  }
  return entries;
}

const [a, b] = await Promise.all([walk(ours), walk(reference)]);
const lines = [];
let differences = 0;
let subMicrosecondMtimes = 0;
let rootMtime = false;
const note = (line) => {
  differences++;
  if (lines.length < 40) lines.push(line);
};
for (const [path, x] of a) {
  const y = b.get(path);
  if (!y) {
    note(`only in ours: ${path} (${x.type})`);
    continue;
  }
  for (const field of ['type', 'uid', 'gid', 'mode', 'nlink', 'size', 'target']) {
    if (x[field] !== y[field]) note(`${path}: ${field} ours=${x[field]} reference=${y[field]}`);
  }
  if (x.mtimeNs !== y.mtimeNs) {
    const delta = x.mtimeNs > y.mtimeNs ? x.mtimeNs - y.mtimeNs : y.mtimeNs - x.mtimeNs;
    if (delta < 1000n) subMicrosecondMtimes++;
    else if (path === '.' && !rootEntry) rootMtime = true;
    else note(`${path}: mtime ours=${x.mtimeNs} reference=${y.mtimeNs} (ns)`);
  }
}
for (const [path, y] of b) if (!a.has(path)) note(`only in reference: ${path} (${y.type})`);

console.log(`metadata: ${a.size} paths in ours, ${b.size} in the reference`);
for (const line of lines) console.log(`  ${line}`);
if (differences > lines.length) console.log(`  ... and ${differences - lines.length} more`);
console.log(
  `metadata differences (type, owner, group, mode, links, size, target, mtime >= 1 µs): ${differences}`,
);
console.log(`mtimes that differ by less than 1 µs: ${subMicrosecondMtimes}`);
if (rootMtime) console.log('root directory mtime differs (expected when the layer has no entry for "./")');
console.log(JSON.stringify({ paths: a.size, differences, subMicrosecondMtimes, rootMtime }));
