/** Test helpers that drive real tools (GNU tar, gzip, pigz, python3 tarfile) on real trees. */
import { execFileSync } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { chmodSync, linkSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { FetchRange } from '../src/extract.js';

export function run(cmd: string, args: string[], opts: { cwd?: string; input?: Buffer } = {}): Buffer {
  return execFileSync(cmd, args, { cwd: opts.cwd, input: opts.input, maxBuffer: 1 << 30 });
}

/** Streams a buffer in chunks of random sizes (1 byte .. 200 KiB), as a network would. */
export async function* chunked(data: Uint8Array, seed = 1): AsyncIterable<Uint8Array> {
  let state = seed >>> 0 || 1;
  let p = 0;
  while (p < data.length) {
    state = (Math.imul(state, 1103515245) + 12345) >>> 0;
    const n = state % 7 === 0 ? 1 + (state % 13) : 1 + (state % (200 * 1024));
    yield data.subarray(p, Math.min(data.length, p + n));
    p += n;
  }
}

export function fetchFrom(blob: Uint8Array): FetchRange {
  return async (start, end) => {
    if (start < 0 || end > blob.length || start > end) throw new Error(`bad range ${start}-${end}`);
    return blob.slice(start, end);
  };
}

export interface PyEntry {
  name: string;
  type: string;
  offset_data: number;
  size: number;
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  linkname: string;
  mtime: number;
  devmajor: number;
  devminor: number;
  pax_headers: Record<string, string>;
}

const PY_LIST = `
import json, sys, tarfile
kinds = {tarfile.REGTYPE: 'reg', tarfile.AREGTYPE: 'reg', tarfile.CONTTYPE: 'reg', tarfile.DIRTYPE: 'dir',
         tarfile.SYMTYPE: 'symlink', tarfile.LNKTYPE: 'hardlink', tarfile.CHRTYPE: 'char',
         tarfile.BLKTYPE: 'block', tarfile.FIFOTYPE: 'fifo'}
out = []
with tarfile.open(sys.argv[1], 'r:') as t:
    for m in t:
        out.append(dict(name=m.name, type=kinds.get(m.type, repr(m.type)), offset_data=m.offset_data,
                        size=m.size, mode=m.mode, uid=m.uid, gid=m.gid, uname=m.uname, gname=m.gname,
                        linkname=m.linkname, mtime=m.mtime, devmajor=m.devmajor, devminor=m.devminor,
                        pax_headers=m.pax_headers))
json.dump(out, sys.stdout)
`;

/** Python's tarfile, an independent tar parser, as the oracle for entry metadata and data offsets. */
export function pythonList(tarPath: string): PyEntry[] {
  return JSON.parse(run('python3', ['-c', PY_LIST, tarPath]).toString('utf8'));
}

/**
 * A tree with what layers hold: long (>100, >255) names, deep dirs, hard and symbolic links,
 * empty files, a fifo, device nodes, xattrs, odd modes and times. `portable` leaves out what the
 * ustar format cannot store.
 */
export function makeTree(root: string, o: { portable?: boolean } = {}): void {
  mkdirSync(root, { recursive: true });
  const file = (rel: string, data: Uint8Array | string, mode = 0o644) => {
    const p = join(root, rel);
    mkdirSync(join(p, '..'), { recursive: true });
    writeFileSync(p, data);
    chmodSync(p, mode);
    return p;
  };
  file('empty', '');
  file('small.txt', 'hello, zTOC\n');
  file('big.bin', randomBytes(3 * 1024 * 1024 + 123));
  file('medium.bin', randomBytes(200_000));
  file('héllo-世界.txt', 'unicode name\n');
  file(`${'d/'.repeat(30)}deep.txt`, 'deep\n');
  file('setuid', '#!/bin/sh\n', 0o4755);
  file('noperm', 'secret', 0o000);
  mkdirSync(join(root, 'sticky'));
  chmodSync(join(root, 'sticky'), 0o1777);
  linkSync(join(root, 'small.txt'), join(root, 'hardlink'));
  symlinkSync('small.txt', join(root, 'symlink'));
  run('mkfifo', [join(root, 'fifo')]);
  run('mknod', [join(root, 'chardev'), 'c', '1', '3']);
  run('mknod', [join(root, 'blockdev'), 'b', '7', '200']);
  const x = file('xattrs.txt', 'has xattrs\n');
  run('setfattr', ['-n', 'user.color', '-v', 'blue', x]);
  run('setfattr', ['-n', 'user.empty', '-v', '""', x]);
  run('touch', ['-h', '-d', '@1234567890.123456789', join(root, 'small.txt')]);
  run('touch', ['-h', '-d', '@0', join(root, 'empty')]);
  run('touch', ['-h', '-d', '@4102444800.5', join(root, 'medium.bin')]);
  if (!o.portable) {
    file(`${'n'.repeat(150)}.txt`, 'long name\n');
    file(`${'L'.repeat(120)}/${'m'.repeat(140)}/${'z'.repeat(20)}.txt`, 'very long path\n');
    symlinkSync(`${'t'.repeat(130)}/target`, join(root, 'long-symlink'));
    linkSync(join(root, `${'n'.repeat(150)}.txt`), join(root, `${'h'.repeat(110)}-hardlink`));
    run('touch', ['-h', '-d', '@-100', join(root, 'noperm')]);
  }
}

export function readTree(root: string, rel: string): Buffer {
  return readFileSync(join(root, rel));
}
