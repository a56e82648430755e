/**
 * Records what containers read from lazy layers, per image, as a prefetch list: each path once
 * per mount, appended in first-read order to `<dir>/<image manifest hex>.paths`. Layers of one
 * image share the file, so reads keep the workload's order across layers. A write that fails
 * turns recording off with one warning; serving reads never waits for or fails on it.
 */
import { createWriteStream, mkdirSync, type WriteStream } from 'node:fs';
import { join } from 'node:path';
import type { Logger } from 'pino';

export class ReadRecorder {
  private readonly files = new Map<string, WriteStream>();
  private broken = false;

  constructor(
    private readonly dir: string,
    private readonly logger: Logger,
  ) {}

  /** The path list file of an image. */
  fileOf(manifestDigest: string): string {
    return join(this.dir, `${manifestDigest.replace(/^sha256:/, '')}.paths`);
  }

  /** A callback for a layer mount of the image that appends each path it is given. */
  recorderFor(manifestDigest: string): (path: string) => void {
    return (path) => {
      if (this.broken) return;
      this.streamOf(manifestDigest)?.write(`${path}\n`);
    };
  }

  /** Flushes and closes every list. */
  async close(): Promise<void> {
    const streams = [...this.files.values()];
    this.files.clear();
    await Promise.all(streams.map((s) => new Promise<void>((resolve) => s.end(resolve))));
  }

  private streamOf(manifestDigest: string): WriteStream | undefined {
    let stream = this.files.get(manifestDigest);
    if (!stream) {
      const file = this.fileOf(manifestDigest);
      try {
        mkdirSync(this.dir, { recursive: true });
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
