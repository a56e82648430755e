/**
 * Turns a list of paths in an image (files, parts of files, or directories meaning every file
 * below them) into prefetch span ranges per layer. Each path is looked up in the merged tree
 * (topmost layer wins, symlinks followed, hardlinks to their data); its data's spans join that layer's
 * list in the order the paths were given, so a list recorded from a workload's reads keeps
 * the workload's order. Layers without a zTOC count as empty: a file only they hold is
 * planned from a lower layer's copy, which costs bandwidth but never serves wrong bytes.
 */
import { type FileMetadata, findFile, normalizePath, spansForRange, type Ztoc } from '@soci-ts/ztoc';
import { SociIndexError } from './errors.js';
import { MergedView } from './merged-view.js';
import type { PrefetchSpan } from './prefetch.js';

/** One line of a prefetch list: a path, and optionally which bytes of that file. */
export interface PrefetchEntry {
  path: string;
  /** Only bytes `[offset, offset + length)` of the file (ignored for directories). */
  range?: { offset: number; length: number };
}

export interface PrefetchPlan {
  /** Layer index (image order) -> span ranges to fetch first, in order. */
  layers: Map<number, PrefetchSpan[]>;
  /** Listed entries the image does not have (or that hold no file data), as list lines. */
  missing: string[];
}

/**
 * Reads a prefetch list: one absolute path per line, or a path, a tab, a byte offset, a tab
 * and a length for part of a file; blank lines and `#` comments are ignored.
 */
export function parsePrefetchList(text: string): PrefetchEntry[] {
  return text
    .split('\n')
    .map((line) => line.replace(/\r$/, ''))
    .filter((line) => line.trim() !== '' && !line.trim().startsWith('#'))
    .map((line) => {
      const [path = '', ...numbers] = line.split('\t');
      if (numbers.length === 0) return { path: path.trim() };
      const [offset, length] = numbers.map((n) => (/^\d+$/.test(n) ? Number(n) : Number.NaN));
      if (numbers.length !== 2 || !Number.isSafeInteger(offset) || !Number.isSafeInteger(length)) {
        throw new SociIndexError(
          'INDEX_INVALID_PREFETCH_LIST',
          `prefetch list line "${line}" is neither "<path>" nor "<path><TAB><offset><TAB><length>"`,
        );
      }
      return { path: path.trim(), range: { offset: offset!, length: length! } };
    });
}

/** An entry as a list line (what parsePrefetchList reads back). */
export function formatPrefetchEntry(entry: PrefetchEntry): string {
  return entry.range ? `${entry.path}\t${entry.range.offset}\t${entry.range.length}` : entry.path;
}

export function planPrefetch(
  layerZtocs: readonly (Ztoc | undefined)[],
  entries: readonly (string | PrefetchEntry)[],
): PrefetchPlan {
  const view = new MergedView(layerZtocs.map((z) => z?.toc ?? []));
  const planned = layerZtocs.map(() => new SpanList());
  const missing: string[] = [];
  for (const item of entries) {
    const entry = typeof item === 'string' ? { path: item } : item;
    const files = filesAt(view, layerZtocs, entry.path);
    let planable = 0;
    for (const { layer, file } of files.list) {
      const [start, end] = byteRange(file, files.directory ? undefined : entry.range);
      if (end <= start) continue;
      const { startSpan, endSpan } = spansForRange(layerZtocs[layer]!, start, end - start);
      planned[layer]!.add(startSpan, endSpan);
      planable++;
    }
    if (planable === 0) missing.push(formatPrefetchEntry(entry));
  }
  const layers = new Map<number, PrefetchSpan[]>();
  planned.forEach((list, layer) => {
    if (list.ranges.length > 0) layers.set(layer, list.ranges);
  });
  return { layers, missing };
}

/** The tar stream bytes of a file's data, or of the part of it `range` names. */
function byteRange(file: FileMetadata, range: PrefetchEntry['range']): [start: number, end: number] {
  const start = file.uncompressedOffset + Math.min(range?.offset ?? 0, file.uncompressedSize);
  const end = range
    ? Math.min(start + range.length, file.uncompressedOffset + file.uncompressedSize)
    : file.uncompressedOffset + file.uncompressedSize;
  return [start, end];
}

/** Regular files with data that `path` names: itself, or every file below a directory. */
function filesAt(
  view: MergedView,
  layerZtocs: readonly (Ztoc | undefined)[],
  path: string,
): { directory: boolean; list: { layer: number; file: FileMetadata }[] } {
  let hit: ReturnType<MergedView['resolve']>;
  try {
    hit = view.resolve(path);
  } catch (err) {
    if (err instanceof SociIndexError && err.code === 'INDEX_NOT_FOUND')
      return { directory: false, list: [] };
    throw err;
  }
  if (hit.entry.type !== 'dir') {
    const data = dataOf(layerZtocs[hit.layer], hit.layer, hit.entry);
    return { directory: false, list: data ? [data] : [] };
  }
  const prefix = `${hit.path}/`;
  const below = new Set<string>();
  for (const ztoc of layerZtocs) {
    for (const f of ztoc?.toc ?? []) {
      const name = normalizePath(f.name);
      if (name.startsWith(prefix) && !MergedView.isWhiteout(name)) below.add(name);
    }
  }
  const list = [...below].sort().flatMap((name) => {
    const entry = view.lookup(name);
    const data =
      entry && entry.entry.type !== 'dir'
        ? dataOf(layerZtocs[entry.layer], entry.layer, entry.entry)
        : undefined;
    return data ? [data] : [];
  });
  return { directory: true, list };
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
