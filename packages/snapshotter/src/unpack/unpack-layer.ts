import { lstat, mkdtemp, open, readdir, realpath, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { throwIfAborted } from './abort.js';
import { UnpackError } from './errors.js';
import { LayerWriter } from './layer-writer.js';
import { layerCompression } from './media-type.js';
import { runTool } from './run-tool.js';
import { spoolLayer } from './spool.js';
import { TarReader } from './tar-reader.js';

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
  signal?: AbortSignal;
}

export interface UnpackResult {
  /** Tar entries read (whiteouts included). */
  entries: number;
  /** Bytes of regular-file content written. */
  bytes: number;
  /** xattrs of the layer that were not set (overlay-internal names, file system refusals). */
  warnings: string[];
}

const DIGEST = /^sha256:[0-9a-f]{64}$/;

/**
 * Unpacks a tar or tar+gzip layer blob into `dest` as an overlayfs lower directory.
 *
 * The blob is read once: its compressed bytes are checked against `digest` (and `size`) while
 * they are decompressed into a temporary tar next to `dest` (removed afterwards), then the
 * entries are written from it. Nothing is written outside `dest` (the temporary tar aside), no
 * symlink is ever followed, and on any failure everything created inside `dest` is removed before
 * the UnpackError is thrown, so the caller may simply retry.
 */
export async function unpackLayer(options: UnpackLayerOptions): Promise<UnpackResult> {
  const compression = layerCompression(options.mediaType);
  if (!DIGEST.test(options.digest)) {
    throw new UnpackError(
      'BAD_ARGUMENT',
      `layer digest "${options.digest}" is not sha256:<64 lowercase hex>`,
    );
  }
  if ((options.whiteouts ?? 'overlay') !== 'overlay') {
    throw new UnpackError('BAD_ARGUMENT', `whiteouts "${options.whiteouts}" is not supported; use "overlay"`);
  }
  const opaqueXattr = options.opaqueXattr ?? 'trusted.overlay.opaque';
  if (opaqueXattr !== 'trusted.overlay.opaque' && opaqueXattr !== 'user.overlay.opaque') {
    throw new UnpackError('BAD_ARGUMENT', `opaqueXattr "${opaqueXattr}" is not an overlayfs opaque xattr`);
  }
  const { signal } = options;
  throwIfAborted(signal);
  const root = await emptyDirectory(options.dest);
  const work = await mkdtemp(join(dirname(root), `.${basename(root)}.unpack-`));
  let writer: LayerWriter | undefined;
  try {
    const tarPath = join(work, 'layer.tar');
    const entries = await spoolLayer({ ...options, compression, tarPath });
    const tar = await open(tarPath, 'r');
    try {
      writer = new LayerWriter({ root, tar: new TarReader(tar), opaqueXattr, signal });
      for (const entry of entries) {
        throwIfAborted(signal);
        await writer.apply(entry);
      }
      await writer.finish(work);
      throwIfAborted(signal);
    } finally {
      await writer?.settle();
      await tar.close();
    }
    return { entries: writer.entries, bytes: writer.bytes, warnings: writer.warnings };
  } catch (err) {
    await removeContents(root, writer?.rootXattrs ?? []);
    if (signal?.aborted && !(err instanceof UnpackError && err.code === 'ABORTED')) throwIfAborted(signal);
    throw err;
  } finally {
    await rm(work, { recursive: true, force: true });
  }
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
      'BAD_DESTINATION',
      `layer destination ${dest} must be an existing empty directory (${(err as Error).message})`,
      { cause: err },
    );
  }
  return root;
}

/** Takes `root` back to empty: removes every entry in it (never following symlinks) and the xattrs set on it. */
async function removeContents(root: string, rootXattrs: readonly string[]): Promise<void> {
  for (const name of await readdir(root)) await rm(join(root, name), { recursive: true, force: true });
  for (const name of rootXattrs) {
    await runTool('setfattr', ['-h', '-x', name, root], '', undefined).catch(() => {});
  }
}
