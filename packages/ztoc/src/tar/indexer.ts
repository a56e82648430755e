import { ZtocError } from '../errors.js';
import {
  checkEntryName,
  checkLimit,
  checkLinkTarget,
  resolveZtocLimits,
  type ZtocLimits,
} from '../limits.js';
import type { FileMetadata, FileType } from '../model.js';
import { formatModTime } from '../modtime.js';
import { compareUtf8 } from '../utf8-order.js';
import { BLOCK, isZeroBlock, paddedSize, parseHeader, type RawHeader } from './header.js';
import { parsePaxInteger, parsePaxRecords, parsePaxTime } from './pax.js';

/** Largest PAX or GNU long-name payload kept in memory (Go's archive/tar uses the same bound). */
const MAX_SPECIAL_SIZE = 1 << 20;

/** Typeflags whose entries carry no data in the stream, whatever their size field says. */
const HEADER_ONLY: Record<string, FileType> = {
  '1': 'hardlink',
  '2': 'symlink',
  '3': 'char',
  '4': 'block',
  '5': 'dir',
  '6': 'fifo',
};

/**
 * Called with each entry as its header is parsed. `pax` holds the raw payloads of the PAX headers
 * that apply to it (global ones first), for values that are not UTF-8 text (binary xattrs);
 * `mtime` is `entry.modTime` as numbers, so that a writer need not parse the text back.
 */
export type TarEntryListener = (
  entry: FileMetadata,
  pax: readonly Uint8Array[],
  mtime: { seconds: number; nanos: number },
) => void;

/** The records of an entry without PAX headers: shared, never written to. */
const NO_RECORDS: ReadonlyMap<string, string> = new Map();

type State =
  | { kind: 'header' }
  /** `padding`: how many of the `remaining` bytes are block padding after an entry's data. */
  | { kind: 'skip'; remaining: number; padding: number }
  | { kind: 'special'; flag: string; data: Uint8Array; filled: number; padding: number; at: number }
  | { kind: 'end' };

/**
 * Push parser that lists the entries of an uncompressed tar stream fed in chunks of any size.
 * Only header blocks (and PAX / GNU long-name payloads) are buffered; file data is skipped.
 *
 * Supports ustar, GNU (long names `L`/`K`, base-256 numbers), PAX local `x` and global `g`
 * headers (global records apply to every later entry). Sparse files (GNU `S`, PAX
 * `GNU.sparse.*`) are rejected with ZTOC_UNSUPPORTED_SPARSE: their data is not stored contiguously,
 * so a byte range in the tar is not the file's content.
 */
export class TarIndexer {
  private readonly entries: FileMetadata[] = [];
  /** The zTOC limits: a layer whose file table a reader would refuse is refused while it streams. */
  private readonly limits: ZtocLimits;
  private readonly header = new Uint8Array(BLOCK);
  private headerFill = 0;
  private state: State = { kind: 'header' };
  private position = 0;
  private zeroBlocks = 0;
  private globalRecords = new Map<string, string>();
  private localRecords: Map<string, string> | undefined;
  private longName: string | undefined;
  private longLink: string | undefined;
  /** Raw payloads of the PAX headers in force (global ones, then the entry's local one), for onEntry. */
  private globalPax: Uint8Array[] = [];
  private localPax: Uint8Array | undefined;
  private count = 0;
  private readonly onEntry: TarEntryListener | undefined;

  /**
   * With `onEntry`, each entry is handed over as soon as its header is parsed (its data follows
   * in the stream) and not kept: finish() then returns an empty list.
   */
  constructor(options: { limits?: Partial<ZtocLimits>; onEntry?: TarEntryListener } = {}) {
    this.limits = resolveZtocLimits(options.limits);
    this.onEntry = options.onEntry;
  }

  /** Bytes consumed so far: after finish(), the size of the tar stream. */
  get size(): number {
    return this.position;
  }

  push(chunk: Uint8Array): void {
    let p = 0;
    while (p < chunk.length) {
      const state = this.state;
      switch (state.kind) {
        case 'end':
          // Whatever follows the end-of-archive marker (record padding) is not part of the archive.
          this.position += chunk.length - p;
          return;
        case 'skip': {
          const n = Math.min(state.remaining, chunk.length - p);
          state.remaining -= n;
          p += n;
          this.position += n;
          if (state.remaining === 0) this.state = { kind: 'header' };
          break;
        }
        case 'special': {
          const n = Math.min(state.data.length - state.filled, chunk.length - p);
          state.data.set(chunk.subarray(p, p + n), state.filled);
          state.filled += n;
          p += n;
          this.position += n;
          if (state.filled === state.data.length) {
            this.applySpecial(state.flag, state.data, state.at);
            this.state = state.padding
              ? { kind: 'skip', remaining: state.padding, padding: state.padding }
              : { kind: 'header' };
          }
          break;
        }
        case 'header': {
          const n = Math.min(BLOCK - this.headerFill, chunk.length - p);
          this.header.set(chunk.subarray(p, p + n), this.headerFill);
          this.headerFill += n;
          p += n;
          this.position += n;
          if (this.headerFill === BLOCK) {
            this.headerFill = 0;
            this.onHeaderBlock(this.position - BLOCK);
          }
          break;
        }
      }
    }
  }

  /**
   * Ends the stream. Like Go's archive/tar, a stream that stops cleanly between entries counts
   * as complete without its end-of-archive marker; so does one that lacks only the padding after
   * its last file's data (umoci 0.4's `insert` writes such layers). A stream cut inside a header,
   * a PAX record or file data is truncated: an entry is never listed without all of its bytes.
   */
  finish(): FileMetadata[] {
    const state = this.state;
    const complete =
      state.kind === 'end' ||
      (state.kind === 'header' && this.headerFill === 0) ||
      (state.kind === 'skip' && state.remaining <= state.padding);
    if (!complete) {
      throw new ZtocError(
        'ZTOC_TRUNCATED_TAR',
        `tar stream ended at byte ${this.position} before its end-of-archive marker: the layer is truncated`,
      );
    }
    return this.entries;
  }

  private onHeaderBlock(at: number): void {
    if (isZeroBlock(this.header)) {
      this.zeroBlocks++;
      if (this.zeroBlocks === 2) this.state = { kind: 'end' };
      return;
    }
    if (this.zeroBlocks) {
      throw new ZtocError(
        'ZTOC_BAD_TAR',
        `tar header at offset ${at} follows an empty block: the archive is corrupt`,
      );
    }
    const h = parseHeader(this.header, at);
    switch (h.typeflag) {
      case 'x':
      case 'g':
      case 'L':
      case 'K':
        this.startSpecial(h, at);
        return;
      case 'S':
        throw sparse(h.name, at);
    }
    this.addEntry(h, at);
  }

  private startSpecial(h: RawHeader, at: number): void {
    if (h.size > MAX_SPECIAL_SIZE) {
      throw new ZtocError(
        'ZTOC_BAD_TAR',
        `tar header at offset ${at}: '${h.typeflag}' payload of ${h.size} bytes exceeds ${MAX_SPECIAL_SIZE}`,
      );
    }
    const state: State = {
      kind: 'special',
      flag: h.typeflag,
      data: new Uint8Array(h.size),
      filled: 0,
      padding: paddedSize(h.size) - h.size,
      at,
    };
    if (h.size === 0) {
      this.applySpecial(h.typeflag, state.data, at);
      return;
    }
    this.state = state;
  }

  private applySpecial(flag: string, data: Uint8Array, at: number): void {
    if (flag === 'x' || flag === 'g') {
      const records = parsePaxRecords(data, at);
      if (flag === 'g') {
        for (const [k, v] of records) this.globalRecords.set(k, v);
        if (this.onEntry) this.keepGlobalPax(data);
      } else {
        this.localRecords = records;
        this.localPax = data;
      }
      return;
    }
    // GNU long name/link: NUL-terminated (sometimes NUL-padded) text.
    let end = data.indexOf(0);
    if (end < 0) end = data.length;
    const text = new TextDecoder('utf-8', { ignoreBOM: true }).decode(data.subarray(0, end));
    if (flag === 'L') this.longName = text;
    else this.longLink = text;
  }

  /** Later global headers override earlier ones: keep the newest, within a bound a hostile stream cannot grow. */
  private keepGlobalPax(data: Uint8Array): void {
    this.globalPax.push(data);
    let kept = this.globalPax.reduce((sum, d) => sum + d.length, 0);
    while (kept > 2 * MAX_SPECIAL_SIZE && this.globalPax.length > 1) kept -= this.globalPax.shift()!.length;
  }

  private addEntry(h: RawHeader, at: number): void {
    let records = NO_RECORDS;
    if (this.globalRecords.size || this.localRecords) {
      const merged = new Map(this.globalRecords);
      if (this.localRecords) for (const [k, v] of this.localRecords) merged.set(k, v);
      records = merged;
    }
    this.localRecords = undefined;

    const name = this.longName ?? records.get('path') ?? h.name;
    const linkname = this.longLink ?? records.get('linkpath') ?? h.linkname;
    this.longName = undefined;
    this.longLink = undefined;
    for (const key of records.keys()) if (key.startsWith('GNU.sparse.')) throw sparse(name, at);
    const what = `tar entry at offset ${at}`;
    checkEntryName(this.limits, name, what);
    checkLinkTarget(this.limits, linkname, what);
    checkLimit(this.limits, 'maxEntries', ++this.count, 'the number of tar entries');

    const type = entryType(h.typeflag, name);
    if (!type) {
      throw new ZtocError(
        'ZTOC_UNSUPPORTED_ENTRY',
        `tar entry "${name}" at offset ${at} has typeflag '${h.typeflag}', which a container layer cannot hold`,
      );
    }
    const sizeRecord = records.get('size');
    const size = sizeRecord === undefined ? h.size : parsePaxInteger('size', sizeRecord, at);
    const dataSize = type === 'reg' ? size : 0;
    const mtimeRecord = records.get('mtime');
    const mtime = mtimeRecord === undefined ? { seconds: h.mtime, nanos: 0 } : parsePaxTime(mtimeRecord, at);
    const uid = records.get('uid');
    const gid = records.get('gid');
    // fromEntries defines own properties, so a hostile key like "__proto__" stays a plain key.
    const xattrs = records.size
      ? Object.fromEntries([...records].sort((a, b) => compareUtf8(a[0], b[0])))
      : {};

    const entry: FileMetadata = {
      name,
      type,
      uncompressedOffset: at + BLOCK,
      uncompressedSize: dataSize,
      linkname,
      mode: h.mode,
      uid: uid === undefined ? h.uid : parsePaxInteger('uid', uid, at),
      gid: gid === undefined ? h.gid : parsePaxInteger('gid', gid, at),
      uname: records.get('uname') ?? h.uname,
      gname: records.get('gname') ?? h.gname,
      modTime: formatModTime(mtime.seconds, mtime.nanos),
      devmajor: h.devmajor,
      devminor: h.devminor,
      xattrs,
    };
    if (this.onEntry) {
      const pax = this.localPax ? [...this.globalPax, this.localPax] : this.globalPax;
      this.localPax = undefined;
      this.onEntry(entry, pax, mtime);
    } else {
      this.entries.push(entry);
    }
    if (dataSize > 0) {
      const remaining = paddedSize(dataSize);
      this.state = { kind: 'skip', remaining, padding: remaining - dataSize };
    }
  }
}

function entryType(flag: string, name: string): FileType | undefined {
  const headerOnly = HEADER_ONLY[flag];
  if (headerOnly) return headerOnly;
  if (flag === '0' || flag === '7') return 'reg';
  // Pre-POSIX tars mark directories only by the trailing slash.
  if (flag === '\0') return name.endsWith('/') ? 'dir' : 'reg';
  return undefined;
}

function sparse(name: string, at: number): ZtocError {
  return new ZtocError(
    'ZTOC_UNSUPPORTED_SPARSE',
    `tar entry "${name}" at offset ${at} is a sparse file, which zTOCs cannot describe; ` +
      'rebuild the layer without --sparse',
  );
}
