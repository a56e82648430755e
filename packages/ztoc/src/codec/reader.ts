import { ZtocError } from '../errors.js';
import {
  checkEntryName,
  checkLimit,
  checkLinkTarget,
  resolveZtocLimits,
  type ZtocLimits,
} from '../limits.js';
import type { CompressionAlgorithm, FileMetadata, FileType, Ztoc } from '../model.js';
import { checkSpanLimits, readSpanLayout } from '../span-layout.js';
import {
  ALGORITHM_GZIP,
  ALGORITHM_UNCOMPRESSED,
  CompressionField,
  FileField,
  TocField,
  XattrField,
  ZtocField,
} from './schema.js';
import { corrupt, FbBuffer, type FbTable, type FbVector } from './table.js';

const FILE_TYPES: ReadonlySet<string> = new Set([
  'reg',
  'dir',
  'symlink',
  'hardlink',
  'char',
  'block',
  'fifo',
]);

export interface ReadZtocOptions {
  /** Overrides of {@link DEFAULT_ZTOC_LIMITS}; a zTOC beyond one gives ZTOC_LIMIT_EXCEEDED. */
  limits?: Partial<ZtocLimits>;
}

/**
 * Reads a serialized zTOC in place. Construction checks the top-level tables, the limits and the
 * checkpoints against the archive sizes; each file entry is decoded (and checked, its name against
 * the limits too) when asked for, so opening a zTOC with 10^5 entries is cheap.
 * Every accessor throws ZtocError('ZTOC_INVALID' or 'ZTOC_LIMIT_EXCEEDED') on bad bytes, never anything else.
 */
export class ZtocReader {
  readonly version: string;
  readonly buildToolIdentifier: string;
  readonly compressedArchiveSize: number;
  readonly uncompressedArchiveSize: number;
  readonly algorithm: CompressionAlgorithm;
  readonly maxSpanId: number;
  private readonly metadata: FbVector | undefined;
  private readonly digests: FbVector | undefined;
  private readonly checkpointBytes: Uint8Array;
  private readonly limits: ZtocLimits;
  private names: Map<string, number> | undefined;

  constructor(bytes: Uint8Array, options: ReadZtocOptions = {}) {
    if (!(bytes instanceof Uint8Array))
      throw new ZtocError('ZTOC_INVALID_ARGUMENT', 'zTOC bytes must be a Uint8Array');
    this.limits = resolveZtocLimits(options.limits);
    checkLimit(this.limits, 'maxZtocBytes', bytes.length, 'the zTOC size');
    const buf = new FbBuffer(bytes);
    if (buf.length < 8) {
      throw new ZtocError(
        'ZTOC_INVALID',
        `a zTOC is at least 8 bytes, got ${buf.length}; is this blob a zTOC?`,
      );
    }
    const root = buf.root();
    this.version = root.string(ZtocField.version, 'version');
    this.buildToolIdentifier = root.string(ZtocField.buildToolIdentifier, 'build_tool_identifier');
    this.compressedArchiveSize = nonNegative(
      root,
      ZtocField.compressedArchiveSize,
      'compressed_archive_size',
    );
    this.uncompressedArchiveSize = nonNegative(
      root,
      ZtocField.uncompressedArchiveSize,
      'uncompressed_archive_size',
    );
    const toc = root.table(ZtocField.toc, 'toc');
    this.metadata = toc?.vector(TocField.metadata, 4, 'metadata');
    checkLimit(this.limits, 'maxEntries', this.fileCount, 'the number of entries');

    const info = root.table(ZtocField.compressionInfo, 'compression_info');
    if (!info) throw corrupt('it has no compression_info table');
    const algorithm = info.int8(CompressionField.algorithm, ALGORITHM_GZIP);
    if (algorithm === ALGORITHM_GZIP) this.algorithm = 'gzip';
    else if (algorithm === ALGORITHM_UNCOMPRESSED) this.algorithm = 'uncompressed';
    else throw corrupt(`unknown compression_algorithm ${algorithm}`);
    this.maxSpanId = info.int32(CompressionField.maxSpanId);
    this.digests = info.vector(CompressionField.spanDigests, 4, 'span_digests');
    this.checkpointBytes =
      info.vector(CompressionField.checkpoints, 1, 'checkpoints')?.bytes() ?? new Uint8Array(0);
    const spanCount = this.digests?.length ?? 0;
    checkLimit(this.limits, 'maxSpans', spanCount, 'the number of spans');
    if (this.maxSpanId < -1 || spanCount !== this.maxSpanId + 1) {
      throw corrupt(`max_span_id is ${this.maxSpanId} but there are ${spanCount} span digests`);
    }
    const layout = readSpanLayout({
      compressedArchiveSize: this.compressedArchiveSize,
      uncompressedArchiveSize: this.uncompressedArchiveSize,
      compressionInfo: {
        algorithm: this.algorithm,
        maxSpanId: this.maxSpanId,
        checkpoints: this.checkpointBytes,
      },
    });
    checkSpanLimits(layout, this.limits);
  }

  get fileCount(): number {
    return this.metadata?.length ?? 0;
  }

  get spanCount(): number {
    return this.maxSpanId + 1;
  }

  /** `sha256:<hex>` digest of span `id`'s compressed bytes. */
  spanDigest(id: number): string {
    if (!this.digests)
      throw new ZtocError('ZTOC_OUT_OF_RANGE', `span ${id} does not exist: the zTOC has no spans`);
    return this.digests.string(id);
  }

  spanDigests(): string[] {
    return Array.from({ length: this.spanCount }, (_, i) => this.spanDigest(i));
  }

  /** The checkpoint blob, a view into the zTOC bytes (not a copy). */
  get checkpoints(): Uint8Array {
    return this.checkpointBytes;
  }

  fileName(i: number): string {
    return this.name(this.entry(i));
  }

  file(i: number): FileMetadata {
    const t = this.entry(i);
    const type = t.string(FileField.type, 'type');
    if (!FILE_TYPES.has(type)) throw corrupt(`${t.what} has unknown type "${type}"`);
    const uncompressedOffset = nonNegative(t, FileField.uncompressedOffset, 'uncompressed_offset');
    const uncompressedSize = nonNegative(t, FileField.uncompressedSize, 'uncompressed_size');
    if (uncompressedOffset + uncompressedSize > this.uncompressedArchiveSize) {
      throw corrupt(
        `${t.what} data [${uncompressedOffset}, +${uncompressedSize}) ends after the ` +
          `${this.uncompressedArchiveSize}-byte archive`,
      );
    }
    return {
      name: this.name(t),
      type: type as FileType,
      uncompressedOffset,
      uncompressedSize,
      linkname: this.linkname(t),
      mode: t.int64(FileField.mode, 'mode'),
      uid: t.uint32(FileField.uid),
      gid: t.uint32(FileField.gid),
      uname: t.string(FileField.uname, 'uname'),
      gname: t.string(FileField.gname, 'gname'),
      modTime: t.string(FileField.modTime, 'mod_time'),
      devmajor: t.int64(FileField.devmajor, 'devmajor'),
      devminor: t.int64(FileField.devminor, 'devminor'),
      xattrs: readXattrs(t),
    };
  }

  *files(): IterableIterator<FileMetadata> {
    for (let i = 0; i < this.fileCount; i++) yield this.file(i);
  }

  /**
   * Index of the entry named `path`, or -1. Exact tar names match first; otherwise the name is
   * compared without leading `./` or `/` and without a trailing `/`. When a tar holds the same
   * path twice, the later entry wins, as it does on extraction.
   */
  findIndex(path: string): number {
    if (!this.names) this.names = this.buildNameIndex();
    return this.names.get(path) ?? this.names.get(normalizePath(path)) ?? -1;
  }

  findFile(path: string): FileMetadata | undefined {
    const i = this.findIndex(path);
    return i < 0 ? undefined : this.file(i);
  }

  /** Decodes everything (copies the checkpoints) into the plain model. */
  toZtoc(): Ztoc {
    return {
      version: this.version,
      buildToolIdentifier: this.buildToolIdentifier,
      compressedArchiveSize: this.compressedArchiveSize,
      uncompressedArchiveSize: this.uncompressedArchiveSize,
      toc: Array.from(this.files()),
      compressionInfo: {
        algorithm: this.algorithm,
        maxSpanId: this.maxSpanId,
        spanDigests: this.spanDigests(),
        checkpoints: new Uint8Array(this.checkpointBytes), // a plain copy, even from a Buffer
      },
    };
  }

  private entry(i: number): FbTable {
    if (!this.metadata)
      throw new ZtocError('ZTOC_OUT_OF_RANGE', `file ${i} does not exist: the zTOC lists no files`);
    return this.metadata.table(i);
  }

  /** An entry's name, checked against the limits before it is decoded. */
  private name(t: FbTable): string {
    const bytes = t.stringBytes(FileField.name, 'name');
    checkEntryName(this.limits, bytes, t.what);
    return t.buf.decode(bytes);
  }

  private linkname(t: FbTable): string {
    const bytes = t.stringBytes(FileField.linkname, 'linkname');
    checkLinkTarget(this.limits, bytes, t.what);
    return t.buf.decode(bytes);
  }

  private buildNameIndex(): Map<string, number> {
    const names = new Map<string, number>();
    for (let i = 0; i < this.fileCount; i++) {
      const name = this.fileName(i);
      names.set(name, i);
      const normalized = normalizePath(name);
      if (normalized !== name) names.set(normalized, i);
    }
    return names;
  }
}

/**
 * Decodes a serialized zTOC completely; throws ZtocError ZTOC_INVALID on corrupt input and
 * ZTOC_LIMIT_EXCEEDED on a zTOC beyond `options.limits` (defaults: DEFAULT_ZTOC_LIMITS).
 */
export function decodeZtoc(bytes: Uint8Array, options: ReadZtocOptions = {}): Ztoc {
  return new ZtocReader(bytes, options).toZtoc();
}

/** `./a/b/`, `/a/b` and `a/b` all name the same entry. */
export function normalizePath(path: string): string {
  let p = path;
  while (p.startsWith('./')) p = p.slice(2);
  while (p.startsWith('/')) p = p.slice(1);
  while (p.endsWith('/')) p = p.slice(0, -1);
  return p;
}

function readXattrs(t: FbTable): Record<string, string> {
  const v = t.vector(FileField.xattrs, 4, 'xattrs');
  if (!v) return {};
  const records: [string, string][] = [];
  for (let j = 0; j < v.length; j++) {
    const x = v.table(j);
    records.push([x.string(XattrField.key, 'key'), x.string(XattrField.value, 'value')]);
  }
  // fromEntries defines own properties, so a hostile key like "__proto__" stays a plain key.
  return Object.fromEntries(records);
}

function nonNegative(t: FbTable, id: number, name: string): number {
  const v = t.int64(id, name);
  if (v < 0) throw corrupt(`${t.what}.${name} is negative (${v})`);
  return v;
}
