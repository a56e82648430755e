import { createHash } from 'node:crypto';
import { lstat, mkdtemp, readdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { abortable, abortedError, throwIfAborted } from './abort.js';
import { type DecoderChoice, type LayerDecoder, openDecoder } from './decoder.js';
import { UnpackError } from './errors.js';
import { type ExtractionHandle, startExtraction } from './extraction-thread.js';
import { classify } from './layer-extraction.js';
import { layerCompression } from './media-type.js';
import { runTool } from './run-tool.js';

export type OpaqueXattr = 'trusted.overlay.opaque' | 'user.overlay.opaque';

export interface UnpackLayerOptions {
  /** The compressed layer blob as it streams from the registry. */
  blob: AsyncIterable<Uint8Array>;
  /** `sha256:<hex>` of the compressed blob, from the layer's descriptor. */
  digest: string;
  /** The blob's size from its descriptor; checked when given. */
  size?: number;
  mediaType: string;
  /** An existing empty directory: the snapshot's fs dir. */
  dest: string;
  /** How whiteout entries are written: as overlayfs whiteouts (the only way, for now). */
  whiteouts?: 'overlay';
  /** `user.overlay.opaque` for overlay mounts with the `userxattr` option (rootless). */
  opaqueXattr?: OpaqueXattr;
  /** Which decompressors to use (default: the fastest this host has). */
  decoders?: DecoderChoice;
  signal?: AbortSignal;
}

export interface UnpackResult {
  /** Tar entries read (whiteouts included). */
  entries: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** xattrs of the layer that were not set (overlay-internal names, file system refusals). */
  warnings: string[];
  /** The decompressor that ran: `igzip`, `zlib`, `zstd`, `fzstd` or `none`. */
  decoder: string;
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Unpacks a tar, tar+gzip or tar+zstd layer blob into `dest` as an overlayfs lower directory,
 * while it streams: the compressed bytes are hashed here and decoded, parsed and written on a
 * worker thread as they arrive (no spool). The layer counts as unpacked only once the blob
 * matched `digest` (and `size`) and every entry is written; nothing is written outside `dest` (a
 * small work directory beside it aside), no symlink is ever followed, and on any failure
 * everything created inside `dest` is removed before the UnpackError is thrown, so the caller
 * may simply retry.
 */
export async function unpackLayer(options: UnpackLayerOptions): Promise<UnpackResult> {
  const compression = layerCompression(options.mediaType);
  if (!DIGEST.test(options.digest)) {
    throw new UnpackError(
      'SNAPSHOTTER_BAD_ARGUMENT',
      `layer digest "${options.digest}" is not sha256:<64 lowercase hex>`,
    );
  }
  if ((options.whiteouts ?? 'overlay') !== 'overlay') {
    throw new UnpackError(
      'SNAPSHOTTER_BAD_ARGUMENT',
      `whiteouts "${options.whiteouts}" is not supported; use "overlay"`,
    );
  }
  const opaqueXattr = options.opaqueXattr ?? 'trusted.overlay.opaque';
  if (opaqueXattr !== 'trusted.overlay.opaque' && opaqueXattr !== 'user.overlay.opaque') {
    throw new UnpackError(
      'SNAPSHOTTER_BAD_ARGUMENT',
      `opaqueXattr "${opaqueXattr}" is not an overlayfs opaque xattr`,
    );
  }
  const { signal, size } = options;
  throwIfAborted(signal);
  const root = await emptyDirectory(options.dest);
  const work = await mkdtemp(join(dirname(root), `.${basename(root)}.unpack-`));
  let extraction: ExtractionHandle | undefined;
  let decoder: LayerDecoder | undefined;
  try {
    decoder = openDecoder(compression, options.decoders);
    extraction = startExtraction({ root, workDir: work, opaqueXattr });
    const pumped = pump(decoder, extraction);
    const hash = createHash('sha256');
    let received = 0;
    for await (const chunk of abortable(options.blob, signal)) {
      hash.update(chunk);
      received += chunk.length;
      if (size !== undefined && received > size) throw mismatch(`the blob has more than its ${size} bytes`);
      await feed(decoder, chunk);
    }
    throwIfAborted(signal);
    if (size !== undefined && received !== size) {
      throw mismatch(`the blob ended after ${received} of its ${size} bytes`);
    }
    const actual = `sha256:${hash.digest('hex')}`;
    if (actual !== options.digest)
      throw mismatch(`its ${received} bytes hash to ${actual}, not ${options.digest}`);
    // The blob is the one the descriptor names: from here on a failure is the layer's own.
    decoder.input.end();
    await pumped;
    try {
      await decoder.done;
    } catch (err) {
      throw classify(err);
    }
    const result = await extraction.end();
    throwIfAborted(signal);
    return { ...result, decoder: decoder.name };
  } catch (err) {
    decoder?.destroy();
    await extraction?.abort();
    await removeContents(root, opaqueXattr);
    if (signal?.aborted && !(err instanceof UnpackError && err.code === 'SNAPSHOTTER_ABORTED'))
      throw abortedError(signal);
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
}

/** Compressed bytes into the decoder, waiting while it is busy; dropped once it has failed (the hash goes on). */
async function feed(decoder: LayerDecoder, chunk: Uint8Array): Promise<void> {
  const input = decoder.input;
  if (input.destroyed || input.writableEnded) return;
  if (input.write(chunk)) return;
  await new Promise<void>((resolve) => {
    const settle = () => {
      input.off('drain', settle);
      input.off('close', settle);
      resolve();
    };
    input.on('drain', settle);
    input.on('close', settle);
  });
}

/**
 * Decoded tar bytes to the extraction as they come. Read here, not on the worker: this thread's
 * event loop is free, so the decoder never waits for the writes of the chunk before.
 */
async function pump(decoder: LayerDecoder, extraction: ExtractionHandle): Promise<void> {
  try {
    for await (const chunk of decoder.output as AsyncIterable<Uint8Array>) await extraction.write(chunk);
  } catch {
    // Only the decoder's stream throws here: its `done` says why.
  }
}

/** The blob is not what its descriptor says. */
function mismatch(what: string): UnpackError {
  return new UnpackError(
    'SNAPSHOTTER_DIGEST_MISMATCH',
    `layer blob does not match its descriptor: ${what}; fetch it again`,
  );
}

/** The real path of `dest`, which must be an existing empty directory. */
async function emptyDirectory(dest: string): Promise<string> {
  let root: string;
  try {
    root = await realpath(dest);
    if (!(await lstat(root)).isDirectory()) throw new Error('not a directory');
    if ((await readdir(root)).length) throw new Error('not empty');
  } catch (err) {
    throw new UnpackError(
      'SNAPSHOTTER_BAD_DESTINATION',
      `layer destination ${dest} must be an existing empty directory (${(err as Error).message})`,
      { cause: err },
    );
  }
  return root;
}

/** Takes `root` back to empty: removes every entry in it (never following symlinks) and the opaque xattr. */
async function removeContents(root: string, opaqueXattr: string): Promise<void> {
  for (const name of await readdir(root)) await rm(join(root, name), { recursive: true, force: true });
  // Set on the root only when the layer makes it opaque; removing a missing one fails harmlessly.
  await runTool('setfattr', ['-h', '-x', opaqueXattr, root], '', undefined).catch(() => {});
}
