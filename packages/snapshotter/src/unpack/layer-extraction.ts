import { hasCode } from '@soci-ts/errors';
import { type FileMetadata, TarIndexer, ZtocError } from '@soci-ts/ztoc';
import { DecodeError } from './decoder.js';
import { UnpackError } from './errors.js';
import { type EntryTime, LayerWriter } from './layer-writer.js';

export interface ExtractionOptions {
  /** The layer root: real path of an existing empty directory. */
  root: string;
  /** A private directory for helper files (xattr dumps), removed by the caller. */
  workDir: string;
  opaqueXattr: string;
}

export interface ExtractionResult {
  entries: number;
  bytes: number;
  warnings: string[];
}

const NO_PAX: readonly Uint8Array[] = [];

/**
 * A layer's tar stream in, files out, chunk by chunk as it is decoded: tar parser -> writer. No
 * spool: each chunk is parsed and its files' contents written before the next one is taken, so
 * memory stays at a few chunks whatever the layer's size. Failures are UnpackErrors (BAD_LAYER,
 * UNSUPPORTED_ENTRY, UNSAFE_PATH, WRITE_FAILED, TOOL_FAILED); the first one is kept and thrown
 * by {@link end}, later chunks are ignored.
 */
export class TarExtraction {
  private readonly writer: LayerWriter;
  private readonly indexer: TarIndexer;
  /** Entries whose header was parsed and whose content is not all written yet, in stream order. */
  private readonly queue: Array<{ entry: FileMetadata; pax: readonly Uint8Array[]; mtime: EntryTime }> = [];
  private headBegun = false;
  private position = 0;
  private failure: UnpackError | undefined;

  constructor(private readonly options: ExtractionOptions) {
    this.writer = new LayerWriter({ root: options.root, opaqueXattr: options.opaqueXattr });
    this.indexer = new TarIndexer({
      // The indexer reuses its list of PAX payloads: a copy, unless there is nothing to copy.
      onEntry: (entry, pax, mtime) => this.queue.push({ entry, pax: pax.length ? [...pax] : NO_PAX, mtime }),
    });
  }

  /** Parses one chunk and hands each entry, then its content bytes, to the writer. */
  push(chunk: Uint8Array): void {
    if (this.failure) return;
    try {
      const start = this.position;
      this.indexer.push(chunk);
      this.position += chunk.length;
      while (this.queue.length) {
        const { entry, pax, mtime } = this.queue[0]!;
        if (!this.headBegun) {
          this.writer.begin(entry, pax, mtime);
          this.headBegun = true;
        }
        const dataEnd = entry.uncompressedOffset + entry.uncompressedSize;
        if (entry.uncompressedSize > 0) {
          const from = Math.max(entry.uncompressedOffset, start);
          const to = Math.min(dataEnd, this.position);
          if (to > from) this.writer.content(chunk.subarray(from - start, to - start));
          if (dataEnd > this.position) return;
        }
        this.queue.shift();
        this.headBegun = false;
      }
    } catch (err) {
      this.failure = classify(err);
      this.writer.abandon();
    }
  }

  /** After the last chunk: checks the tar was complete and finishes the layer. */
  end(): ExtractionResult {
    if (this.failure) throw this.failure;
    try {
      this.indexer.finish();
      this.writer.finish(this.options.workDir);
    } catch (err) {
      this.writer.abandon();
      throw classify(err);
    }
    const { entries, bytes, warnings } = this.writer;
    return { entries, bytes, warnings };
  }

  /** Stops (the caller then empties the root). */
  abort(): void {
    this.failure ??= new UnpackError('SNAPSHOTTER_ABORTED', 'layer unpack was aborted');
    this.writer.abandon();
  }
}

/** Every failure as the UnpackError a caller can act on. */
export function classify(err: unknown): UnpackError {
  if (err instanceof UnpackError) return err;
  if (err instanceof ZtocError) {
    // An entry the tar walker cannot describe is a valid layer this unpacker cannot write, not a broken one.
    const code = hasCode(err, 'ZTOC_UNSUPPORTED_SPARSE', 'ZTOC_UNSUPPORTED_ENTRY')
      ? 'SNAPSHOTTER_UNSUPPORTED_ENTRY'
      : 'SNAPSHOTTER_BAD_LAYER';
    return new UnpackError(code, `layer tar cannot be unpacked: ${err.message}`, { cause: err });
  }
  if (err instanceof DecodeError) {
    return new UnpackError(
      'SNAPSHOTTER_BAD_LAYER',
      `layer blob is not a valid compressed stream (${err.message}): the image is corrupt`,
      { cause: err },
    );
  }
  // Host trouble (disk full, permissions): not the layer's fault.
  return new UnpackError('SNAPSHOTTER_WRITE_FAILED', `could not write the layer: ${(err as Error).message}`, {
    cause: err,
  });
}
