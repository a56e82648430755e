// Gzip blobs made by real tools (GNU gzip, pigz, python3 zlib, Node zlib) from realistic input,
// generated once per test file into a temp dir.
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { noiseBytes } from '@soci-ts/testing/bytes';
import type { Hasher } from '../src/index.js';

export interface Fixture {
  name: string;
  gz: Uint8Array;
  /** Full decompression by `gzip -dc` (the oracle). */
  plain: Uint8Array;
}

/** Deterministic mixed input: text and binaries from /usr plus an incompressible stretch. */
export function mixedInput(targetSize: number, seed = 1): Uint8Array {
  const parts: Uint8Array[] = [];
  let size = 0;
  const roots = ['/usr/share/doc', '/usr/bin', '/usr/lib/x86_64-linux-gnu', '/usr/share/perl5'];
  const files: string[] = [];
  const walk = (dir: string, depth: number) => {
    let names: string[];
    try {
      names = readdirSync(dir).sort();
    } catch {
      return;
    }
    for (const n of names) {
      if (files.length > 4000) return;
      const p = join(dir, n);
      try {
        const st = statSync(p);
        if (st.isDirectory() && depth < 4) walk(p, depth + 1);
        else if (st.isFile() && st.size > 0 && st.size < 400_000) files.push(p);
      } catch {}
    }
  };
  for (const r of roots) walk(r, 0);
  let x = seed * 2654435761;
  const rand = () => {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    return x;
  };
  while (size < targetSize && files.length > 0) {
    const f = files[rand() % files.length]!;
    let data: Uint8Array;
    try {
      data = readFileSync(f);
    } catch {
      continue;
    }
    parts.push(data);
    size += data.length;
    if (rand() % 10 === 0) {
      const noise = new Uint8Array(20_000 + (rand() % 60_000));
      for (let i = 0; i < noise.length; i++) noise[i] = rand() >>> 24;
      parts.push(noise);
      size += noise.length;
    }
  }
  const out = new Uint8Array(size);
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out.subarray(0, Math.min(size, targetSize));
}

/** Incompressible test bytes (shared with the other packages' tests). */
export const randomBytes = noiseBytes;

export class TmpDir {
  readonly path = mkdtempSync(join(tmpdir(), 'seekable-gzip-'));
  file(name: string, data?: Uint8Array): string {
    const p = join(this.path, name);
    if (data) writeFileSync(p, data);
    return p;
  }
  remove(): void {
    rmSync(this.path, { recursive: true, force: true });
  }
}

/** Runs a tool; returns a plain Uint8Array (a Buffer's slice() would alias instead of copying). */
export function run(cmd: string, args: string[], input?: Uint8Array): Uint8Array {
  return new Uint8Array(execFileSync(cmd, args, { input, maxBuffer: 1 << 30 }));
}

export function gunzipOracle(gz: Uint8Array): Uint8Array {
  return run('gzip', ['-dc'], gz);
}

export function python(code: string, input?: Uint8Array): Uint8Array {
  return run('python3', ['-c', code], input);
}

export function concat(...parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.length, 0));
  let pos = 0;
  for (const p of parts) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** The gzip variants every decoding property runs over. */
export function makeFixtures(): Fixture[] {
  const a = mixedInput(3_000_000, 1);
  const b = mixedInput(1_200_000, 2);
  const noise = randomBytes(300_000, 7);
  const tiny = new TextEncoder().encode('hello, seekable gzip\n'.repeat(3));
  const blobs: [string, Uint8Array][] = [
    ['gzip -1', run('gzip', ['-1', '-c', '-n'], a)],
    ['gzip -6', run('gzip', ['-6', '-c'], a)],
    ['gzip -9', run('gzip', ['-9', '-c', '-n'], b)],
    [
      'gzip -1 random (stored blocks)',
      run('gzip', ['-1', '-c', '-n'], concat(noise, b.subarray(0, 200_000))),
    ],
    ['pigz -6', run('pigz', ['-6', '-c'], a)],
    ['pigz -i -b 32', run('pigz', ['-i', '-b', '32', '-c'], b)],
    ['pigz -9 -b 128', run('pigz', ['-9', '-b', '128', '-c'], b)],
    [
      'cat a.gz empty.gz b.gz tiny.gz',
      concat(
        run('gzip', ['-6', '-c', '-n'], b.subarray(0, 700_000)),
        run('gzip', ['-c', '-n'], new Uint8Array(0)),
        run('gzip', ['-1', '-c', '-n'], b.subarray(700_000)),
        run('gzip', ['-c', '-n'], tiny),
      ),
    ],
    ['node zlib', new Uint8Array(gzipSync(b, { level: 5 }))],
    [
      'python3 zlib wbits 31',
      python(
        'import sys,zlib; c=zlib.compressobj(6, zlib.DEFLATED, 31); sys.stdout.buffer.write(c.compress(sys.stdin.buffer.read())+c.flush())',
        b,
      ),
    ],
    [
      'python3 gzip FNAME+mtime, FEXTRA/FCOMMENT/FHCRC member',
      concat(
        python(
          'import sys,gzip,io; o=io.BytesIO(); f=gzip.GzipFile(filename="layer.tar", mode="wb", fileobj=o, mtime=1); f.write(sys.stdin.buffer.read()); f.close(); sys.stdout.buffer.write(o.getvalue())',
          b.subarray(0, 400_000),
        ),
        craftedHeaderMember(b.subarray(400_000, 900_000)),
      ),
    ],
    ['tiny (fixed block)', run('gzip', ['-9', '-c', '-n'], tiny)],
  ];
  return blobs.map(([name, gz]) => ({ name, gz, plain: gunzipOracle(gz) }));
}

/** A member with every optional header field (FEXTRA, FNAME, FCOMMENT, FHCRC), built by python3. */
export function craftedHeaderMember(data: Uint8Array): Uint8Array {
  return python(
    [
      'import sys,zlib,struct',
      'd=sys.stdin.buffer.read()',
      'extra=b"SC"+struct.pack("<H",5)+b"abcde"',
      'h=b"\\x1f\\x8b\\x08\\x1e"+struct.pack("<I",12345)+b"\\x00\\x03"+struct.pack("<H",len(extra))+extra+b"name.tar\\x00"+b"a comment\\x00"',
      'h+=struct.pack("<H",zlib.crc32(h)&0xffff)',
      'c=zlib.compressobj(6,zlib.DEFLATED,-15)',
      'body=c.compress(d)+c.flush()',
      'sys.stdout.buffer.write(h+body+struct.pack("<II",zlib.crc32(d),len(d)&0xffffffff))',
    ].join('\n'),
    data,
  );
}

export function sha256Hasher(): Hasher {
  const h = createHash('sha256');
  return {
    update: (d) => {
      h.update(d);
    },
    digest: () => `sha256:${h.digest('hex')}`,
  };
}

export function sha256(data: Uint8Array): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** Splits `data` into chunks of pseudo-random sizes (1 byte .. maxChunk). */
export function* chunked(data: Uint8Array, maxChunk: number, seed = 3): Generator<Uint8Array> {
  let x = seed;
  for (let pos = 0; pos < data.length; ) {
    x = (Math.imul(x, 1103515245) + 12345) >>> 0;
    const n = 1 + (x % maxChunk);
    yield data.subarray(pos, pos + n);
    pos += n;
  }
}
