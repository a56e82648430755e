/**
 * Turns a list of paths in an image (files, or directories meaning every file below them)
 * into prefetch span ranges per layer. Each path is looked up in the merged tree (topmost
 * layer wins, symlinks followed, hardlinks to their data); its data's spans join that layer's
 * list in the order the paths were given, so a list recorded from a workload's reads keeps
 * the workload's order. Layers without a zTOC count as empty: a file only they hold is
 * planned from a lower layer's copy, which costs bandwidth but never serves wrong bytes.
 */
import { type FileMetadata, findFile, normalizePath, spansForRange, type Ztoc } from '@soci-ts/ztoc';
import { SociIndexError } from './errors.js';
import { MergedView } from './merged-view.js';
import type { PrefetchSpan } from './prefetch.js';

export interface PrefetchPlan {
  /** Layer index (image order) -> span ranges to fetch first, in order. */
  layers: Map<number, PrefetchSpan[]>;
  /** Listed paths the image does not have (or that hold no file data). */
  missing: string[];
}

/** Reads a prefetch list: one absolute path per line; blank lines and `#` comments ignored. */
export function parsePrefetchList(text: string): string[] {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('#'));
}

export function planPrefetch(
  layerZtocs: readonly (Ztoc | undefined)[],
  paths: readonly string[],
): PrefetchPlan {
  const view = new MergedView(layerZtocs.map((z) => z?.toc ?? []));
  const planned = layerZtocs.map(() => new SpanList());
  const missing: string[] = [];
  for (const path of paths) {
    const files = filesAt(view, layerZtocs, path);
    if (files.length === 0) missing.push(path);
    for (const { layer, file } of files) {
      const ztoc = layerZtocs[layer]!;
      const { startSpan, endSpan } = spansForRange(ztoc, file.uncompressedOffset, file.uncompressedSize);
      planned[layer]!.add(startSpan, endSpan);
    }
  }
  const layers = new Map<number, PrefetchSpan[]>();
  planned.forEach((list, layer) => {
    if (list.ranges.length > 0) layers.set(layer, list.ranges);
  });
  return { layers, missing };
}

/** Regular files with data that `path` names: itself, or every file below a directory. */
function filesAt(
  view: MergedView,
  layerZtocs: readonly (Ztoc | undefined)[],
  path: string,
): { layer: number; file: FileMetadata }[] {
  let hit: ReturnType<MergedView['resolve']>;
  try {
    hit = view.resolve(path);
  } catch (err) {
    if (err instanceof SociIndexError && err.code === 'NOT_FOUND') return [];
    throw err;
  }
  if (hit.entry.type !== 'dir') {
    const data = dataOf(layerZtocs[hit.layer], hit.layer, hit.entry);
    return data ? [data] : [];
  }
  const prefix = `${hit.path}/`;
  const below = new Set<string>();
  for (const ztoc of layerZtocs) {
    for (const f of ztoc?.toc ?? []) {
      const name = normalizePath(f.name);
      if (name.startsWith(prefix) && !MergedView.isWhiteout(name)) below.add(name);
    }
  }
  return [...below].sort().flatMap((name) => {
    const entry = view.lookup(name);
    const data =
      entry && entry.entry.type !== 'dir'
        ? dataOf(layerZtocs[entry.layer], entry.layer, entry.entry)
        : undefined;
    return data ? [data] : [];
  });
}

/** Where a non-directory entry's bytes are: its own data, or a hardlink's target in the same layer. */
function dataOf(
  ztoc: Ztoc | undefined,
  layer: number,
  entry: FileMetadata,
): { layer: number; file: FileMetadata } | undefined {
  let file = entry;
  if (entry.type === 'hardlink') {
    try {
      file = findFile(ztoc!, entry.linkname);
    } catch {
      return undefined; // a link to nothing has no bytes to fetch
    }
  }
  if (file.type !== 'reg' || file.uncompressedSize === 0) return undefined;
  return { layer, file };
}

/** Inclusive span ranges in first-asked order; a span already listed is never listed again. */
class SpanList {
  readonly ranges: PrefetchSpan[] = [];
  private readonly listed = new Set<number>();

  add(first: number, last: number): void {
    for (let id = first; id <= last; id++) {
      if (this.listed.has(id)) continue;
      this.listed.add(id);
      const tail = this.ranges[this.ranges.length - 1];
      if (tail && tail.endSpan === id - 1) tail.endSpan = id;
      else this.ranges.push({ startSpan: id, endSpan: id });
    }
  }
}
