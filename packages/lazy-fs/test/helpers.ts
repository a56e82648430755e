import type { ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { mkdir, mkdtemp, open, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { run } from '@soci-ts/testing';
import { spawnTs, stopChild, waitUntil } from '@soci-ts/testing/process';
import { buildZtoc, type Ztoc } from '@soci-ts/ztoc';
import type { BlobRangeReader } from '../src/index.js';

export async function tempDir(prefix: string): Promise<string> {
  return mkdtemp(join(tmpdir(), `lazyfs-${prefix}-`));
}

/** Writes files under `root`: path -> bytes (or text). */
export async function writeTree(root: string, files: Record<string, string | Uint8Array>): Promise<void> {
  for (const [path, data] of Object.entries(files)) {
    await mkdir(dirname(join(root, path)), { recursive: true });
    await writeFile(join(root, path), data);
  }
}

/** Deterministic pseudo-random bytes that gzip can squeeze a little (text-like), never all zeros. */
export function compressibleBytes(length: number, seed: number): Uint8Array {
  const out = new Uint8Array(length);
  let x = seed >>> 0 || 1;
  const words = ['layer ', 'span ', 'fuse ', 'gzip ', 'soci ', 'tar ', 'zran ', '\n'];
  let i = 0;
  while (i < length) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    x >>>= 0;
    if (x % 5 === 0) {
      out[i++] = x & 0xff;
      continue;
    }
    const w = words[x % words.length]!;
    for (let j = 0; j < w.length && i < length; j++) out[i++] = w.charCodeAt(j);
  }
  return out;
}

export interface BuiltLayer {
  /** The layer blob (tar.gz or tar) on disk. */
  blobPath: string;
  tarPath: string;
  digest: string;
  size: number;
  ztoc: Ztoc;
}

/** Tars `root` with GNU tar (PAX, xattrs, numeric owners), gzips with GNU gzip, builds its zTOC. */
export async function buildLayer(
  root: string,
  out: string,
  options: { spanSize: number; compression?: 'gzip' | 'uncompressed'; gzipLevel?: number },
): Promise<BuiltLayer> {
  const tarPath = `${out}.tar`;
  await run('tar', [
    '--format=pax',
    '--xattrs',
    '--xattrs-include=*',
    '--numeric-owner',
    '--sort=name',
    '-C',
    root,
    '-cf',
    tarPath,
    '.',
  ]);
  let blobPath = tarPath;
  if ((options.compression ?? 'gzip') === 'gzip') {
    blobPath = `${out}.tar.gz`;
    await run('sh', ['-c', `gzip -n -${options.gzipLevel ?? 6} -c "$1" > "$2"`, 'sh', tarPath, blobPath]);
  }
  const ztoc = await buildZtoc(createReadStream(blobPath, { highWaterMark: 1 << 20 }), {
    compression: options.compression ?? 'gzip',
    spanSize: options.spanSize,
  });
  return { blobPath, tarPath, digest: await sha256File(blobPath), size: (await stat(blobPath)).size, ztoc };
}

export async function sha256File(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const chunk of createReadStream(path)) hash.update(chunk as Buffer);
  return `sha256:${hash.digest('hex')}`;
}

/** A BlobRangeReader over a local file, counting requests and bytes. */
export class FileBlobReader implements BlobRangeReader {
  requests: { start: number; end: number }[] = [];
  bytes = 0;
  constructor(
    private readonly path: string,
    readonly size: number,
  ) {}

  async readRange(start: number, end: number): Promise<Uint8Array> {
    this.requests.push({ start, end });
    const fh = await open(this.path, 'r');
    try {
      const buf = Buffer.alloc(end - start);
      const { bytesRead } = await fh.read(buf, 0, buf.length, start);
      this.bytes += bytesRead;
      return buf.subarray(0, bytesRead);
    } finally {
      await fh.close();
    }
  }
}

export type ReaderFault = 'corrupt' | 'truncate' | 'throw';

/** Wraps a reader and damages answers while faults are queued (one fault per request). */
export class FaultyReader implements BlobRangeReader {
  faults: ReaderFault[] = [];
  /** When set, every request gets this fault (until cleared). */
  always: ReaderFault | undefined;
  constructor(readonly inner: BlobRangeReader) {}

  get size(): number | undefined {
    return this.inner.size;
  }

  async readRange(start: number, end: number): Promise<Uint8Array> {
    const fault = this.always ?? this.faults.shift();
    if (fault === 'throw') throw new Error('injected network error');
    const bytes = new Uint8Array(await this.inner.readRange(start, end));
    const middle = Math.floor(bytes.length / 2);
    if (fault === 'corrupt') bytes[middle] = bytes[middle]! ^ 0x5a;
    if (fault === 'truncate') return bytes.subarray(0, bytes.length - 1);
    return bytes;
  }
}

const READ_SCRIPT = fileURLToPath(new URL('./fixtures/read.py', import.meta.url));

/**
 * Reads ranges of files in a child process (python3, parallel threads): the FUSE server's own
 * process must never read its mount. Jobs are [path, offset, length (-1 = to the end)]; answers
 * are sha256 hex or "ERR <errno name>".
 */
export async function readInChild(jobs: [string, number, number][]): Promise<string[]> {
  const { stdout } = await run('python3', [READ_SCRIPT], { input: JSON.stringify(jobs) });
  return JSON.parse(stdout) as string[];
}

/** A FUSE keeper in a child process (its thread pool sized as the real launcher does). */
export async function startKeeperProcess(
  socketPath: string,
  waitForDaemonMs?: number,
): Promise<{ child: ChildProcess; stderr: () => string; stop: () => Promise<void> }> {
  const run = spawnTs(
    'test/run-keeper.ts',
    [socketPath, ...(waitForDaemonMs ? [String(waitForDaemonMs)] : [])],
    {
      env: { UV_THREADPOOL_SIZE: '64' },
    },
  );
  await waitUntil('the FUSE keeper to start', async () => run.output().includes('ready'), 30_000, run.child);
  return { child: run.child, stderr: run.stderr, stop: () => stopChild(run.child, 10_000) };
}
