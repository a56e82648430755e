import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { type Duplex, PassThrough, Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGunzip } from 'node:zlib';
import { type FileMetadata, TarIndexer, ZtocError } from '@soci-ts/ztoc';
import { abortable, throwIfAborted } from './abort.js';
import { UnpackError } from './errors.js';
import type { LayerCompression } from './media-type.js';

export interface SpoolOptions {
  blob: AsyncIterable<Uint8Array>;
  /** `sha256:<hex>` of the compressed blob (already validated syntactically). */
  digest: string;
  size?: number;
  compression: LayerCompression;
  /** Where the uncompressed tar is written (created, must not exist). */
  tarPath: string;
  signal?: AbortSignal;
}

/**
 * Streams a layer blob once: hashes the compressed bytes, decompresses them into a tar file and
 * lists the tar's entries on the way. Returns the entries only when the blob matched its digest
 * and size and the tar was complete.
 *
 * When decompression or tar parsing fails midway, the rest of the blob is still read and hashed:
 * a blob that does not match its digest is DIGEST_MISMATCH (fetch again), one that does is
 * BAD_LAYER (the image itself is broken, retrying will not help).
 */
export async function spoolLayer(options: SpoolOptions): Promise<FileMetadata[]> {
  const { signal, size } = options;
  const hash = createHash('sha256');
  let received = 0;
  const spool = new TarSpool(options.compression, options.tarPath);
  try {
    for await (const chunk of abortable(options.blob, signal)) {
      hash.update(chunk);
      received += chunk.length;
      if (size !== undefined && received > size) {
        throw mismatch(`the blob has more than its ${size} bytes`, spool.error);
      }
      await spool.write(chunk);
      throwIfAborted(signal);
    }
    if (size !== undefined && received !== size) {
      throw mismatch(`the blob ended after ${received} of its ${size} bytes`, spool.error);
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== options.digest) {
      throw mismatch(`its ${received} bytes hash to ${actual}, not ${options.digest}`, spool.error);
    }
    return await spool.finish();
  } finally {
    await spool.close();
  }
}

function mismatch(what: string, cause: unknown): UnpackError {
  return new UnpackError(
    'DIGEST_MISMATCH',
    `layer blob does not match its descriptor: ${what}; fetch it again`,
    {
      cause,
    },
  );
}

/** Decompressor -> tar indexer -> file, fed chunk by chunk with backpressure; remembers its first error. */
class TarSpool {
  /** Set once decoding failed; later writes are dropped. */
  error: unknown;
  private readonly input: Duplex;
  private readonly done: Promise<void>;
  private readonly indexer = new TarIndexer();

  constructor(compression: LayerCompression, tarPath: string) {
    const indexer = this.indexer;
    const tap = new Transform({
      transform(chunk: Buffer, _encoding, callback) {
        try {
          indexer.push(chunk);
          callback(null, chunk);
        } catch (err) {
          callback(err as Error);
        }
      },
    });
    // gunzip reads every member of a multi-member stream (pigz -i, concatenated gzips).
    this.input = compression === 'gzip' ? createGunzip({ chunkSize: 128 * 1024 }) : new PassThrough();
    this.done = pipeline(this.input, tap, createWriteStream(tarPath, { flags: 'wx', mode: 0o600 }));
    this.done.catch((err: unknown) => {
      this.error ??= err;
    });
  }

  async write(chunk: Uint8Array): Promise<void> {
    if (this.error !== undefined || this.input.destroyed) return;
    if (this.input.write(chunk)) return;
    await new Promise<void>((resolve) => {
      const settle = () => {
        this.input.off('drain', settle);
        this.input.off('close', settle);
        resolve();
      };
      this.input.on('drain', settle);
      this.input.on('close', settle);
    });
  }

  async finish(): Promise<FileMetadata[]> {
    if (this.error === undefined) {
      this.input.end();
      await this.done.catch(() => {});
    }
    if (this.error !== undefined) throw decodeError(this.error);
    try {
      return this.indexer.finish();
    } catch (err) {
      throw decodeError(err);
    }
  }

  /** Stops decoding (if still running) and waits until the tar file is closed. */
  async close(): Promise<void> {
    if (!this.input.writableFinished) this.input.destroy();
    await this.done.catch(() => {});
  }
}

/** A decode failure of a blob that matched its digest: the layer itself is bad. */
function decodeError(err: unknown): unknown {
  if (err instanceof ZtocError) {
    const code = err.code.startsWith('UNSUPPORTED') ? 'UNSUPPORTED_ENTRY' : 'BAD_LAYER';
    return new UnpackError(code, `layer tar cannot be unpacked: ${err.message}`, { cause: err });
  }
  const zlibCode = (err as { code?: unknown }).code;
  if (typeof zlibCode === 'string' && zlibCode.startsWith('Z_')) {
    return new UnpackError(
      'BAD_LAYER',
      `layer blob matches its digest but is not a valid gzip stream (${(err as Error).message}): the image is corrupt`,
      { cause: err },
    );
  }
  // Host trouble writing the spool file (disk full, ...): not the layer's fault.
  return new UnpackError('WRITE_FAILED', `could not spool the layer's tar: ${(err as Error).message}`, {
    cause: err,
  });
}
