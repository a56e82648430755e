/**
 * The file tree an overlay of image layers shows, computed from the layers' tar entry
 * lists (zTOCs) alone: the topmost layer that has a path wins; `.wh.<name>` hides a
 * lower `<name>`; `.wh..wh..opq` hides everything a lower layer has in its directory; a
 * non-directory replaces a lower directory with everything under it. Symlinks are
 * followed the way the kernel would inside the image's root.
 */
import { type FileMetadata, normalizePath } from '@soci-ts/ztoc';
import { SociIndexError } from './errors.js';

const WHITEOUT_PREFIX = '.wh.';
const OPAQUE_MARKER = '.wh..wh..opq';
const MAX_SYMLINK_HOPS = 40;

/** Where a path of the merged tree comes from. */
export interface MergedEntry {
  /** Index of the layer in image order (0 = bottom). */
  layer: number;
  /** Normalized path of the entry in that layer (symlinks resolved). */
  path: string;
  entry: FileMetadata;
}

function parentAndBase(path: string): [string, string] {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? ['', path] : [path.slice(0, slash), path.slice(slash + 1)];
}

function join(dir: string, name: string): string {
  return dir ? `${dir}/${name}` : name;
}

export class MergedView {
  /** Per layer, bottom first: normalized path -> entry (the last tar entry for a path wins). */
  private readonly layers: Map<string, FileMetadata>[];

  constructor(layerTocs: readonly (readonly FileMetadata[])[]) {
    this.layers = layerTocs.map((toc) => new Map(toc.map((f) => [normalizePath(f.name), f] as const)));
  }

  /** The entry a path names, without following symlinks; undefined when the merged tree lacks it. */
  lookup(path: string): MergedEntry | undefined {
    const wanted = normalizePath(path);
    for (let layer = this.layers.length - 1; layer >= 0; layer--) {
      const files = this.layers[layer]!;
      const entry = files.get(wanted);
      if (entry) return { layer, path: wanted, entry };
      if (this.hidesBelow(files, wanted)) return undefined;
    }
    return undefined;
  }

  /** Whether a layer (not having `path` itself) hides `path` of the layers below it. */
  private hidesBelow(files: Map<string, FileMetadata>, path: string): boolean {
    let dir = '';
    for (const name of path.split('/')) {
      const here = join(dir, name);
      if (files.has(join(dir, `${WHITEOUT_PREFIX}${name}`))) return true;
      if (files.has(join(dir, OPAQUE_MARKER))) return true;
      const entry = files.get(here);
      if (here !== path && entry && entry.type !== 'dir') return true;
      dir = here;
    }
    return false;
  }

  /** The entry a path names after following symlinks (in every component, the last one too). */
  resolve(path: string): MergedEntry {
    let remaining = path.split('/');
    let current: string[] = [];
    let hops = 0;
    while (remaining.length > 0) {
      const name = remaining.shift()!;
      if (name === '' || name === '.') continue;
      if (name === '..') {
        current.pop();
        continue;
      }
      const next = [...current, name].join('/');
      const hit = this.lookup(next);
      if (!hit) throw new SociIndexError('INDEX_NOT_FOUND', `${path}: no such file in the image`);
      if (hit.entry.type === 'symlink') {
        if (++hops > MAX_SYMLINK_HOPS)
          throw new SociIndexError('INDEX_NOT_FOUND', `${path}: too many levels of symbolic links`);
        if (hit.entry.linkname.startsWith('/')) current = [];
        remaining = [...hit.entry.linkname.split('/'), ...remaining];
        continue;
      }
      if (remaining.some((r) => r !== '' && r !== '.') && hit.entry.type !== 'dir') {
        throw new SociIndexError('INDEX_NOT_FOUND', `${path}: ${next} is not a directory in the image`);
      }
      current = next.split('/');
    }
    const final = current.join('/');
    const hit = final ? this.lookup(final) : undefined;
    if (!hit)
      throw new SociIndexError('INDEX_NOT_FOUND', `${path} is the image's root directory, not a file`);
    return hit;
  }

  /** Names of whiteout entries are never part of the merged tree. */
  static isWhiteout(path: string): boolean {
    return parentAndBase(normalizePath(path))[1].startsWith(WHITEOUT_PREFIX);
  }
}
