import { type ChildProcess, spawn } from 'node:child_process';
import { accessSync, constants } from 'node:fs';
import { delimiter, join } from 'node:path';
import { PassThrough, type Readable, Transform, type Writable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { SociError } from '@soci-ts/errors';
import { Decompress as ZstdDecompress } from 'fzstd';
import { UnpackError } from './errors.js';
import type { LayerCompression } from './media-type.js';

/**
 * Which decompressor a layer gets. `auto` takes the fastest one this host has, measured on the
 * demo's python layer (80 MB gzip, 217 MB tar; bench/unpack): gzip by ISA-L's `igzip` (0.53 s)
 * over node's zlib (1.06 s), zstd by the `zstd` tool (0.39 s) over fzstd in JavaScript (2.3 s).
 */
export interface DecoderChoice {
  gzip: 'auto' | 'igzip' | 'zlib';
  zstd: 'auto' | 'zstd' | 'fzstd';
}

export const DEFAULT_DECODERS: DecoderChoice = { gzip: 'auto', zstd: 'auto' };

/** A blob's bytes go into `input`; the tar stream comes out of `output`. */
export interface LayerDecoder {
  /** What decodes: `igzip`, `zlib`, `zstd`, `fzstd` or `none`. */
  readonly name: string;
  readonly input: Writable;
  readonly output: Readable;
  /** Settles when the decoder is done; rejects with a DecodeError when the bytes were not valid. */
  readonly done: Promise<void>;
  /** Stops it (after a failure elsewhere). */
  destroy(): void;
}

/** The compressed stream is not valid gzip/zstd (what the decoder said is the message). */
export class DecodeError extends SociError<'SNAPSHOTTER_DECODE_FAILED'> {
  override readonly name = 'DecodeError';
}

export function openDecoder(
  compression: LayerCompression,
  choice: DecoderChoice = DEFAULT_DECODERS,
): LayerDecoder {
  if (compression === 'none') return streamDecoder('none', new PassThrough({ highWaterMark: 1 << 20 }));
  if (compression === 'gzip') {
    const tool = choice.gzip === 'zlib' ? undefined : onPath('igzip');
    if (tool) return toolDecoder('igzip', tool);
    if (choice.gzip === 'igzip') throw notInstalled('igzip', 'gzip');
    // gunzip reads every member of a multi-member stream (pigz -i, concatenated gzips).
    return streamDecoder('zlib', createGunzip({ chunkSize: 256 * 1024 }));
  }
  const tool = choice.zstd === 'fzstd' ? undefined : onPath('zstd');
  if (tool) return toolDecoder('zstd', tool);
  if (choice.zstd === 'zstd') throw notInstalled('zstd', 'zstd');
  return streamDecoder('fzstd', fzstdTransform());
}

function toolFailed(what: string, cause?: unknown): UnpackError {
  return new UnpackError(
    'SNAPSHOTTER_TOOL_FAILED',
    `${what}; the layer was not decoded: repair the tool, or set gzip_decoder = "zlib" / zstd_decoder = "fzstd" in the config`,
    { cause },
  );
}

function notInstalled(tool: string, compression: string): UnpackError {
  return new UnpackError(
    'SNAPSHOTTER_TOOL_FAILED',
    `${tool} is not installed but the config asks for it to decode ${compression} layers; install it or choose "auto"`,
  );
}

function streamDecoder(name: string, stream: Transform): LayerDecoder {
  const done = new Promise<void>((resolve, reject) => {
    stream.on('end', resolve);
    stream.on('error', (err: Error & { code?: unknown }) => {
      // zlib's own failures carry Z_* codes, fzstd's are all about the data; anything else is ours.
      const bad = name === 'fzstd' || (typeof err.code === 'string' && err.code.startsWith('Z_'));
      reject(bad ? new DecodeError('SNAPSHOTTER_DECODE_FAILED', err.message, { cause: err }) : err);
    });
  });
  done.catch(() => {});
  return { name, input: stream, output: stream, done, destroy: () => stream.destroy() };
}

/** A decompressing tool on stdin/stdout (`-d -c`): reads in its own process, on another core. */
function toolDecoder(name: string, path: string): LayerDecoder {
  const child: ChildProcess = spawn(path, ['-d', '-c'], { stdio: ['pipe', 'pipe', 'pipe'] });
  const stderr: Buffer[] = [];
  child.stderr!.on('data', (b: Buffer) => stderr.push(b));
  // EPIPE when the tool exits early: its exit status says why.
  child.stdin!.on('error', () => {});
  const done = new Promise<void>((resolve, reject) => {
    // The tool could not run, or something killed it: the host's trouble, not the layer's.
    child.on('error', (err) => reject(toolFailed(`could not run ${path}: ${err.message}`, err)));
    child.on('close', (code, signal) => {
      if (code === 0) return resolve();
      const said = Buffer.concat(stderr).toString().trim() || '(no message)';
      if (code === null) return reject(toolFailed(`${name} -d was killed by ${signal} (${said})`));
      // A tool that ran and refused the bytes: the blob is not valid gzip/zstd.
      reject(new DecodeError('SNAPSHOTTER_DECODE_FAILED', `${name} -d exited with ${code}: ${said}`));
    });
  });
  done.catch(() => {});
  return {
    name,
    input: child.stdin!,
    output: child.stdout!,
    done,
    destroy: () => {
      child.kill('SIGKILL');
    },
  };
}

function fzstdTransform(): Transform {
  let push: (chunk: Uint8Array) => void = () => {};
  const decompress = new ZstdDecompress((chunk) => push(chunk));
  return new Transform({
    transform(chunk: Buffer, _encoding, callback) {
      push = (out) => this.push(out);
      try {
        decompress.push(chunk);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
    flush(callback) {
      push = (out) => this.push(out);
      try {
        decompress.push(new Uint8Array(0), true);
        callback();
      } catch (err) {
        callback(err as Error);
      }
    },
  });
}

const found = new Map<string, string | undefined>();

/** The tool's path when an executable of that name is on PATH (looked up once). */
function onPath(tool: string): string | undefined {
  if (!found.has(tool)) {
    const dirs = (process.env.PATH ?? '/usr/local/bin:/usr/bin:/bin').split(delimiter).filter(Boolean);
    found.set(
      tool,
      dirs
        .map((dir) => join(dir, tool))
        .find((path) => {
          try {
            accessSync(path, constants.X_OK);
            return true;
          } catch {
            return false;
          }
        }),
    );
  }
  return found.get(tool);
}
