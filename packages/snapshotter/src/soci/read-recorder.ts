/**
 * Records what containers read from lazy layers, per image, as a prefetch list (the format
 * `soci create --prefetch` reads), appended in first-read order to
 * `<dir>/<image manifest hex>.paths`. Layers of one image share the file, so the list keeps the
 * workload's order across layers. A small file is one line, its path, at its first read. Of a
 * big file only the bytes read count (a model loader that reads the headers of large shards
 * must not prefetch the shards): each run of contiguous reads becomes `path TAB offset TAB
 * length`, written when the run starts, and what it grew by is written once reads of the mount
 * pause for a moment (or the mount goes). A write that fails turns recording off with one
 * warning; reads never wait for it and never fail because of it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { FileRead } from '@soci-ts/lazy-fs';
import { formatPrefetchEntry, type PrefetchEntry } from '@soci-ts/soci-index';
import type { Logger } from 'pino';

/** Files up to this size are listed whole: their spans are few and they are usually read whole. */
export const WHOLE_FILE_LIMIT = 1024 * 1024;
/** Reads of a mount pausing this long write out what their runs grew by. */
export const RUN_FLUSH_MS = 1000;

/** The run of contiguous bytes a mount's reader is reading in one big file. */
interface ReadRun {
  start: number;
  end: number;
  /** The part of the run already in the list. */
  listedStart: number;
  listedEnd: number;
}

/** One image's list file and the mounts writing to it. */
interface ListFile {
  stream: WriteStream;
  mounts: number;
}

export class ReadRecorder {
  private readonly files = new Map<string, ListFile>();
  private readonly mounts = new Set<MountReads>();
  private broken = false;
  private closed = false;

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {
    try {
      makeDirs(dir); // once, at start: a bad record_dir is reported before any container runs
    } catch (err) {
      this.fail(dir, err);
    }
  }

  /** The list file of an image. */
  fileOf(manifestDigest: string): string {
    return join(this.dir, `${manifestDigest.replace(/^sha256:/, '')}.paths`);
  }

  /** The reads of one layer mount of the image; `close()` it when the mount goes away. */
  mount(manifestDigest: string): MountReads {
    const file = this.closed ? undefined : this.open(manifestDigest);
    const reads = new MountReads(
      (entry) => {
        if (!this.broken) file?.stream.write(`${formatPrefetchEntry(entry)}\n`);
      },
      (self) => {
        this.mounts.delete(self);
        if (file && --file.mounts === 0) {
          this.files.delete(manifestDigest);
          file.stream.end();
        }
      },
    );
    if (!file) reads.close();
    else this.mounts.add(reads);
    return reads;
  }

  /** Ends every run, flushes and closes every list; later mounts record nothing. */
  async close(): Promise<void> {
    this.closed = true;
    const streams = [...this.files.values()].map((f) => f.stream);
    for (const m of [...this.mounts]) m.close();
    await Promise.all(
      streams.map((s) => (s.closed ? undefined : new Promise<void>((resolve) => s.once('close', resolve)))),
    );
  }

  private open(manifestDigest: string): ListFile | undefined {
    if (this.broken) return undefined;
    let file = this.files.get(manifestDigest);
    if (!file) {
      const path = this.fileOf(manifestDigest);
      const stream = createWriteStream(path, { flags: 'a' });
      stream.on('error', (err) => this.fail(path, err));
      file = { stream, mounts: 0 };
      this.files.set(manifestDigest, file);
    }
    file.mounts++;
    return file;
  }

  private fail(path: string, err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    this.logger.warn(
      { err, file: path },
      'recording read paths failed; prefetch recording is off until restart',
    );
  }
}

/**
 * `mkdir -p` one component at a time: Node's recursive mkdir never returns for some paths
 * (under /proc it loops forever, and the sync one blocks the daemon).
 */
function makeDirs(dir: string): void {
  let path = '';
  for (const part of dir.split('/').filter(Boolean)) {
    path += `/${part}`;
    try {
      mkdirSync(path);
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
    }
  }
}

/** Paths a list line cannot hold (the list is line- and tab-separated, and trims its paths). */
const UNLISTABLE = /[\t\n\r]|^\s|\s$/;

/** Turns one mount's reads into list entries (see ReadRecorder). */
export class MountReads {
  private readonly wholeListed = new Set<string>();
  private readonly runs = new Map<string, ReadRun>();
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(
    private readonly emit: (entry: PrefetchEntry) => void,
    private readonly onClose: (self: MountReads) => void,
    private readonly flushMs = RUN_FLUSH_MS,
  ) {}

  /** For lazy-fs's `onRead`. */
  readonly onRead = (read: FileRead): void => {
    const { path, offset, length, fileSize } = read;
    if (this.closed || offset >= fileSize || length <= 0 || UNLISTABLE.test(path)) return;
    if (fileSize <= WHOLE_FILE_LIMIT) {
      if (!this.wholeListed.has(path)) {
        this.wholeListed.add(path);
        this.emit({ path });
      }
      return;
    }
    const end = Math.min(offset + length, fileSize);
    const run = this.runs.get(path);
    if (run && offset <= run.end && end >= run.start) {
      run.start = Math.min(run.start, offset);
      run.end = Math.max(run.end, end);
      this.flushSoon();
      return;
    }
    if (run) this.listGrowth(path, run);
    this.runs.set(path, { start: offset, end, listedStart: offset, listedEnd: end });
    this.emit({ path, range: { offset, length: end - offset } });
  };

  close(): void {
    if (this.closed) return;
    clearTimeout(this.flushTimer);
    for (const [path, run] of this.runs) this.listGrowth(path, run);
    this.runs.clear();
    this.closed = true;
    this.onClose(this);
  }

  private flushSoon(): void {
    clearTimeout(this.flushTimer);
    this.flushTimer = setTimeout(() => {
      for (const [path, run] of this.runs) this.listGrowth(path, run);
    }, this.flushMs).unref();
  }

  /** Lists what a run grew by since it was last listed: forwards (usual), then backwards. */
  private listGrowth(path: string, run: ReadRun): void {
    if (run.end > run.listedEnd) {
      this.emit({ path, range: { offset: run.listedEnd, length: run.end - run.listedEnd } });
    }
    if (run.start < run.listedStart) {
      this.emit({ path, range: { offset: run.start, length: run.listedStart - run.start } });
    }
    run.listedStart = run.start;
    run.listedEnd = run.end;
  }
}
