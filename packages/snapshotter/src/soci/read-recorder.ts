/**
 * Records what containers read from lazy layers, per image, as a prefetch list (the format
 * `soci create --prefetch` reads), appended in first-read order to
 * `<dir>/<image manifest hex>.paths`. Layers of one image share the file, so the list keeps the
 * workload's order across layers. A small file is one line, its path, at its first read. Of a
 * big file only the bytes read count (a model loader that reads the headers of large shards
 * must not prefetch the shards): each run of contiguous reads becomes `path TAB offset TAB
 * length`, written when the run starts and, for what it grew by, when it ends. A write that
 * fails turns recording off with one warning; reads never wait for it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { FileRead } from '@soci-ts/lazy-fs';
import { formatPrefetchEntry, type PrefetchEntry } from '@soci-ts/soci-index';
import type { Logger } from 'pino';

/** Files up to this size are listed whole: their spans are few and they are usually read whole. */
export const WHOLE_FILE_LIMIT = 1024 * 1024;

/** The run of contiguous bytes a mount's reader is reading in one big file. */
interface ReadRun {
  start: number;
  end: number;
  /** The part of the run already in the list (its first read). */
  listedStart: number;
  listedEnd: number;
}

export class ReadRecorder {
  private readonly files = new Map<string, WriteStream>();
  private readonly mounts = new Set<MountReads>();
  private broken = false;

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** The list file of an image. */
  fileOf(manifestDigest: string): string {
    return join(this.dir, `${manifestDigest.replace(/^sha256:/, '')}.paths`);
  }

  /** The reads of one layer mount of the image; `close()` it when the mount goes away. */
  mount(manifestDigest: string): MountReads {
    const reads = new MountReads(
      (entry) => this.append(manifestDigest, entry),
      (m) => this.mounts.delete(m),
    );
    this.mounts.add(reads);
    return reads;
  }

  /** Ends every run, flushes and closes every list. */
  async close(): Promise<void> {
    for (const m of [...this.mounts]) m.close();
    const streams = [...this.files.values()];
    this.files.clear();
    await Promise.all(streams.map((s) => new Promise<void>((resolve) => s.end(resolve))));
  }

  private append(manifestDigest: string, entry: PrefetchEntry): void {
    if (this.broken) return;
    this.streamOf(manifestDigest)?.write(`${formatPrefetchEntry(entry)}\n`);
  }

  private streamOf(manifestDigest: string): WriteStream | undefined {
    let stream = this.files.get(manifestDigest);
    if (!stream) {
      const file = this.fileOf(manifestDigest);
      try {
        makeDirs(this.dir);
      } catch (err) {
        this.fail(file, err);
        return undefined;
      }
      stream = createWriteStream(file, { flags: 'a' });
      stream.on('error', (err) => this.fail(file, err));
      this.files.set(manifestDigest, stream);
    }
    return stream;
  }

  private fail(file: string, err: unknown): void {
    if (this.broken) return;
    this.broken = true;
    this.logger.warn({ err, file }, 'recording read paths failed; prefetch recording is off until restart');
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

/** Turns one mount's reads into list entries (see ReadRecorder). */
export class MountReads {
  private readonly wholeListed = new Set<string>();
  private readonly runs = new Map<string, ReadRun>();
  private closed = false;

  constructor(
    private readonly emit: (entry: PrefetchEntry) => void,
    private readonly onClose: (self: MountReads) => void,
  ) {}

  /** For lazy-fs's `onRead`. */
  readonly onRead = (read: FileRead): void => {
    if (this.closed) return;
    const { path, offset, length, fileSize } = read;
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
      return;
    }
    if (run) this.endRun(path, run);
    this.runs.set(path, { start: offset, end, listedStart: offset, listedEnd: end });
    this.emit({ path, range: { offset, length: end - offset } });
  };

  close(): void {
    if (this.closed) return;
    for (const [path, run] of this.runs) this.endRun(path, run);
    this.runs.clear();
    this.closed = true;
    this.onClose(this);
  }

  /** Lists what a run grew by since its first read: forwards (usual), then backwards. */
  private endRun(path: string, run: ReadRun): void {
    if (run.end > run.listedEnd) {
      this.emit({ path, range: { offset: run.listedEnd, length: run.end - run.listedEnd } });
    }
    if (run.start < run.listedStart) {
      this.emit({ path, range: { offset: run.start, length: run.listedStart - run.start } });
    }
  }
}
