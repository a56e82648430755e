import { createHash } from 'node:crypto';
import { ContainerdError, isAlreadyExists, isContainerdError, isNotFound } from '../errors.js';
import {
  type CallScope,
  type Connection,
  DuplexExchange,
  serverStream,
  unary,
  uncancellable,
} from '../transport.js';
import { type ContentInfo, type Labels, toDate, type WireTimestamp } from '../types.js';

interface WireInfo {
  digest: string;
  size: number;
  createdAt?: WireTimestamp;
  updatedAt?: WireTimestamp;
  labels?: Labels;
}

export type BlobData = Uint8Array | AsyncIterable<Uint8Array>;

interface WriteRequest {
  action: 'STAT' | 'WRITE' | 'COMMIT';
  ref?: string;
  total?: number;
  expected?: string;
  offset?: number;
  data?: Uint8Array;
  labels?: Labels;
}

interface WriteResponse {
  action: string;
  offset: number;
  total: number;
  digest: string;
}

/** Largest piece sent per Write message; well under containerd's 16 MiB message limit. */
const WRITE_CHUNK = 1024 * 1024;
const DEFAULT_LOCK_WAIT_MS = 60_000;

export interface WriteBlobOptions {
  /** Ingest reference; containerd locks it while a write is open (e.g. `layer-sha256:...`). */
  ref: string;
  /** What the bytes must be: containerd verifies size and digest on commit. */
  expected: { digest: string; size: number };
  /**
   * The bytes, whole or streamed, or a function that opens the stream: it is called only when
   * containerd does not have the blob yet, so nothing is downloaded for a blob already present.
   */
  data: BlobData | (() => BlobData | Promise<BlobData>);
  /** Labels for the committed blob (also applied when the blob already existed). */
  labels?: Labels;
  /** How long to wait while another writer holds the same ref (default 60 s). */
  lockWaitMs?: number;
}

export interface WriteBlobResult {
  digest: string;
  size: number;
  /** True when containerd already had the blob; no bytes were sent (the data iterable was not read). */
  existed: boolean;
  /** Bytes sent to containerd. */
  written: number;
}

/** containerd's content store: blobs by digest, with labels (gc references live here). */
export class ContentService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
  ) {}

  async info(digest: string): Promise<ContentInfo> {
    const res = await unary<object, { info: WireInfo }>(this.conn, this.scope, 'content', 'Info', { digest });
    return toContentInfo(res.info);
  }

  /** Sets the given labels (only those keys: an empty value deletes a label). */
  async updateLabels(digest: string, labels: Labels): Promise<ContentInfo> {
    const paths = Object.keys(labels).map((k) => `labels.${k}`);
    const res = await unary<object, { info: WireInfo }>(this.conn, this.scope, 'content', 'Update', {
      info: { digest, labels },
      updateMask: { paths },
    });
    return toContentInfo(res.info);
  }

  async *list(filters: string[] = []): AsyncGenerator<ContentInfo> {
    for await (const page of serverStream<object, { info: WireInfo[] }>(
      this.conn,
      this.scope,
      'content',
      'List',
      {
        filters,
      },
    )) {
      for (const info of page.info) yield toContentInfo(info);
    }
  }

  async delete(digest: string): Promise<void> {
    await unary(this.conn, this.scope, 'content', 'Delete', { digest });
  }

  /** Streams a blob (or the range `offset`..`offset+size`; size 0 means to the end). */
  async *read(digest: string, range: { offset?: number; size?: number } = {}): AsyncGenerator<Buffer> {
    for await (const msg of serverStream<object, { offset: number; data: Buffer }>(
      this.conn,
      this.scope,
      'content',
      'Read',
      { digest, offset: range.offset ?? 0, size: range.size ?? 0 },
    )) {
      yield msg.data;
    }
  }

  async readAll(digest: string): Promise<Buffer> {
    const parts: Buffer[] = [];
    for await (const part of this.read(digest)) parts.push(part);
    return Buffer.concat(parts);
  }

  /** Unfinished ingests (writes not committed nor aborted), e.g. to check a failed pull left none. */
  async listStatuses(
    filters: string[] = [],
  ): Promise<{ ref: string; offset: number; total: number; expected: string }[]> {
    const res = await unary<
      object,
      { statuses: { ref: string; offset: number; total: number; expected: string }[] }
    >(this.conn, this.scope, 'content', 'ListStatuses', { filters });
    return res.statuses.map((s) => ({
      ref: s.ref,
      offset: Number(s.offset),
      total: Number(s.total),
      expected: s.expected,
    }));
  }

  /** Drops an unfinished ingest (no error when there is none). */
  abort(ref: string): Promise<void> {
    return this.abortIngest(ref, this.scope);
  }

  private async abortIngest(ref: string, scope: CallScope): Promise<void> {
    try {
      await unary(this.conn, scope, 'content', 'Abort', { ref });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  /**
   * Writes a blob through the Write stream: STAT (containerd answers ALREADY_EXISTS when it has the
   * digest, and adds it to the current lease), WRITE chunks from offset 0 (which discards any stale
   * partial ingest under the same ref), COMMIT with the expected size, digest and labels. The digest
   * is also computed here, so a mismatch is caught before the commit and the ingest aborted.
   */
  async writeBlob(options: WriteBlobOptions): Promise<WriteBlobResult> {
    const { ref, expected } = options;
    const deadline = Date.now() + (options.lockWaitMs ?? DEFAULT_LOCK_WAIT_MS);
    // Bytes that can be read again: a lock lost after STAT (see below) can be waited out.
    const replayable = typeof options.data === 'function' || options.data instanceof Uint8Array;
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const exchange = await this.openWriter(ref, expected, deadline);
      if (!exchange) {
        if (options.labels && Object.keys(options.labels).length > 0)
          await this.updateLabels(expected.digest, options.labels);
        return { digest: expected.digest, size: expected.size, existed: true, written: 0 };
      }
      try {
        return await this.writeOpened(exchange, options);
      } catch (err) {
        // containerd 2.x takes the ingest lock only at the first WRITE, so two writers of one ref
        // both pass STAT and the second fails there; wait for the first to commit or give up.
        if (!isLockedRef(err) || !replayable || Date.now() + delay > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** WRITE and COMMIT on an opened exchange; see {@link writeBlob}. */
  private async writeOpened(
    exchange: DuplexExchange<WriteRequest, WriteResponse>,
    options: WriteBlobOptions,
  ): Promise<WriteBlobResult> {
    const { ref, expected } = options;
    const hash = createHash(hashAlgorithm(expected.digest));
    let offset = 0;
    try {
      const data = typeof options.data === 'function' ? await options.data() : options.data;
      for await (const chunk of untilFailed(chunks(data), exchange.failed)) {
        if (offset + chunk.byteLength > expected.size) {
          throw new ContainerdError(
            'CONTAINERD_FAILED_PRECONDITION',
            `blob ${expected.digest} is longer than its expected ${expected.size} bytes; its source served wrong bytes, fetch it again`,
            { method: 'content.Write' },
          );
        }
        hash.update(chunk);
        const res = await exchange.send({ action: 'WRITE', offset, data: chunk });
        offset = Number(res.offset);
      }
      const actual = `${expected.digest.split(':')[0]}:${hash.digest('hex')}`;
      if (offset !== expected.size || actual !== expected.digest) {
        throw new ContainerdError(
          'CONTAINERD_FAILED_PRECONDITION',
          `blob ${expected.digest} has ${offset} bytes with digest ${actual}, expected ${expected.size} bytes; its source served wrong bytes, fetch it again`,
          { method: 'content.Write' },
        );
      }
      const res = await exchange.send({
        action: 'COMMIT',
        offset,
        total: expected.size,
        expected: expected.digest,
        labels: options.labels ?? {},
      });
      exchange.end();
      return {
        digest: res.digest || expected.digest,
        size: Number(res.offset),
        existed: false,
        written: offset,
      };
    } catch (err) {
      exchange.cancel();
      if (isAlreadyExists(err)) {
        // Another writer committed the same blob meanwhile: the blob is there, which is all we wanted.
        if (options.labels && Object.keys(options.labels).length > 0)
          await this.updateLabels(expected.digest, options.labels);
        return { digest: expected.digest, size: expected.size, existed: true, written: offset };
      }
      // The other writer's ingest is not ours to abort. Ours is aborted even when the view's signal
      // is what ended the write: an abort must not leave a partial ingest behind.
      if (!isLockedRef(err)) await this.abortIngest(ref, uncancellable(this.scope)).catch(() => undefined);
      throw err;
    }
  }

  /**
   * Opens a Write stream with STAT; undefined when containerd already has the blob. While another
   * writer holds the same ingest ref (a concurrent pull of the same blob), containerd answers
   * UNAVAILABLE "ref locked": wait and retry like containerd's content.OpenWriter, until the other
   * writer commits (then the blob exists) or the deadline has passed.
   */
  private async openWriter(
    ref: string,
    expected: { digest: string; size: number },
    deadline: number,
  ): Promise<DuplexExchange<WriteRequest, WriteResponse> | undefined> {
    for (let delay = 10; ; delay = Math.min(delay * 2, 250)) {
      const exchange = new DuplexExchange<WriteRequest, WriteResponse>(
        this.conn,
        this.scope,
        'content',
        'Write',
      );
      try {
        await exchange.send({ action: 'STAT', ref, total: expected.size, expected: expected.digest });
        return exchange;
      } catch (err) {
        exchange.cancel();
        if (isAlreadyExists(err)) return undefined;
        if (!isLockedRef(err) || Date.now() + delay > deadline) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }
}

/**
 * "ref ... locked for ...: unavailable": another writer holds the ingest ref. containerd 1.x answers
 * UNAVAILABLE; 2.x loses the code on the Write stream's truncate path (UNKNOWN, same text).
 */
function isLockedRef(err: unknown): boolean {
  return (
    isContainerdError(err, 'CONTAINERD_UNAVAILABLE', 'CONTAINERD_UNKNOWN') &&
    /\bref \S+ locked\b/.test(err.message)
  );
}

function toContentInfo(info: WireInfo): ContentInfo {
  return {
    digest: info.digest,
    size: Number(info.size),
    createdAt: toDate(info.createdAt),
    updatedAt: toDate(info.updatedAt),
    labels: { ...(info.labels ?? {}) },
  };
}

function hashAlgorithm(digest: string): string {
  const algorithm = digest.split(':')[0];
  if (algorithm !== 'sha256' && algorithm !== 'sha512') {
    throw new ContainerdError('CONTAINERD_INVALID_ARGUMENT', `unsupported digest algorithm in ${digest}`, {
      method: 'content.Write',
    });
  }
  return algorithm;
}

/**
 * The pieces of `source`, until `failed` rejects: a stream cancelled (the view's signal) or broken
 * while the source is slow to give its next piece ends the write at once. The source is then closed.
 */
async function* untilFailed<T>(source: AsyncIterable<T>, failed: Promise<never>): AsyncGenerator<T> {
  const iterator = source[Symbol.asyncIterator]();
  let done = false;
  try {
    while (!done) {
      const next = await Promise.race([iterator.next(), failed]);
      done = next.done === true;
      if (!done) yield next.value;
    }
  } finally {
    // Not awaited: a source still waiting for its next piece closes when that piece comes.
    if (!done) iterator.return?.()?.catch(() => undefined);
  }
}

/** Re-cuts input into pieces of at most WRITE_CHUNK bytes. */
async function* chunks(data: BlobData): AsyncGenerator<Uint8Array> {
  const source = data instanceof Uint8Array ? [data] : data;
  for await (const piece of source) {
    for (let at = 0; at < piece.byteLength; at += WRITE_CHUNK) {
      yield piece.subarray(at, Math.min(at + WRITE_CHUNK, piece.byteLength));
    }
  }
}
