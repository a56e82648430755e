import { createHash } from 'node:crypto';
import { mkdir, open, readdir, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { SociError } from '@soci-ts/errors';

export type SnapshotKind = 'view' | 'active' | 'committed';

export interface SnapshotUsage {
  size: number;
  inodes: number;
}

/** One snapshot as the store keeps it; `name` is the key (active/view) or the committed name. */
export interface SnapshotRecord {
  /** Directory name under <root>/snapshots; never reused. */
  id: string;
  name: string;
  kind: SnapshotKind;
  /** Name of the committed parent, '' for a base snapshot. */
  parent: string;
  labels: Record<string, string>;
  /** ISO-8601 UTC timestamps. */
  created: string;
  updated: string;
  /** Disk usage, recorded at commit time for committed snapshots. */
  usage?: SnapshotUsage;
}

export interface StoreState {
  nextId: number;
  snapshots: Record<string, SnapshotRecord>;
}

export type MetadataStoreErrorCode = 'SNAPSHOTTER_METADATA_CORRUPT' | 'SNAPSHOTTER_METADATA_IO';

/** The snapshot metadata file is damaged, or cannot be read or written. */
export class MetadataStoreError extends SociError<MetadataStoreErrorCode> {
  override readonly name = 'MetadataStoreError';
}

const FILE_NAME = 'metadata.json';
const TMP_PREFIX = `${FILE_NAME}.tmp-`;
const FORMAT = 'soci-ts.snapshots.v1';

interface FileEnvelope {
  format: string;
  checksum: string;
  state: StoreState;
}

const checksumOf = (stateJson: string) => `sha256:${createHash('sha256').update(stateJson).digest('hex')}`;

/** Serializes a state with a checksum, so a damaged file is detected instead of half-read. */
export function encodeState(state: StoreState): string {
  const stateJson = JSON.stringify(state);
  return `{"format":"${FORMAT}","checksum":"${checksumOf(stateJson)}","state":${stateJson}}\n`;
}

export function decodeState(text: string, path: string): StoreState {
  let envelope: FileEnvelope;
  try {
    envelope = JSON.parse(text) as FileEnvelope;
  } catch (err) {
    throw new MetadataStoreError(
      'SNAPSHOTTER_METADATA_CORRUPT',
      `${path} is not valid JSON; restore it from a backup or move it away to start empty`,
      { cause: err },
    );
  }
  if (envelope?.format !== FORMAT || typeof envelope.state !== 'object' || envelope.state === null) {
    throw new MetadataStoreError(
      'SNAPSHOTTER_METADATA_CORRUPT',
      `${path} is not a soci-ts metadata file (format ${String(envelope?.format)})`,
    );
  }
  if (checksumOf(JSON.stringify(envelope.state)) !== envelope.checksum) {
    throw new MetadataStoreError(
      'SNAPSHOTTER_METADATA_CORRUPT',
      `${path} fails its checksum; restore it from a backup or move it away to start empty`,
    );
  }
  return envelope.state;
}

function cloneState(state: StoreState): StoreState {
  return structuredClone(state);
}

/**
 * The snapshot metadata, kept in memory and persisted as one file that is replaced atomically
 * on every change: written to a temporary file, fsynced, renamed over the old one, and the
 * directory fsynced. A crash at any point leaves either the old or the new file, never a mix,
 * and a leftover temporary file is ignored and removed on the next open.
 *
 * Transactions run one at a time; each works on a copy of the state that becomes current only
 * once it is on disk, so a failing transaction changes nothing.
 */
export class MetadataStore {
  private state: StoreState;
  private queue: Promise<unknown> = Promise.resolve();

  private constructor(
    readonly dir: string,
    state: StoreState,
  ) {
    this.state = state;
  }

  static async open(dir: string): Promise<MetadataStore> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    for (const entry of await readdir(dir)) {
      if (entry.startsWith(TMP_PREFIX)) await rm(join(dir, entry), { force: true });
    }
    const path = join(dir, FILE_NAME);
    let text: string | undefined;
    try {
      text = await readFile(path, 'utf8');
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'ENOENT') {
        throw new MetadataStoreError(
          'SNAPSHOTTER_METADATA_IO',
          `cannot read ${path}: ${(err as Error).message}`,
          {
            cause: err,
          },
        );
      }
    }
    const state = text === undefined ? { nextId: 1, snapshots: {} } : decodeState(text, path);
    return new MetadataStore(dir, state);
  }

  get path(): string {
    return join(this.dir, FILE_NAME);
  }

  /** The current state; callers must not modify it. */
  get current(): Readonly<StoreState> {
    return this.state;
  }

  get(name: string): SnapshotRecord | undefined {
    return this.state.snapshots[name];
  }

  all(): SnapshotRecord[] {
    return Object.values(this.state.snapshots);
  }

  /**
   * Runs `fn` on a draft of the state and persists the draft when `fn` returns. If `fn` throws,
   * or persisting fails, the state stays as it was and the error is passed on.
   */
  transaction<T>(fn: (draft: StoreState) => T | Promise<T>): Promise<T> {
    return this.serialized(async () => {
      const draft = cloneState(this.state);
      const result = await fn(draft);
      await this.persist(draft);
      this.state = draft;
      return result;
    });
  }

  /** Runs `fn` while no transaction runs, without changing the state. */
  exclusive<T>(fn: (state: Readonly<StoreState>) => T | Promise<T>): Promise<T> {
    return this.serialized(() => fn(this.state));
  }

  private serialized<T>(run: () => Promise<T> | T): Promise<T> {
    const next = this.queue.then(run, run);
    this.queue = next.catch(() => undefined);
    return next;
  }

  private async persist(state: StoreState): Promise<void> {
    const tmp = join(this.dir, `${TMP_PREFIX}${process.pid}-${Date.now()}`);
    try {
      const file = await open(tmp, 'w', 0o600);
      try {
        await file.writeFile(encodeState(state));
        await file.sync();
      } finally {
        await file.close();
      }
      await rename(tmp, this.path);
      const dirHandle = await open(this.dir, 'r');
      try {
        await dirHandle.sync();
      } finally {
        await dirHandle.close();
      }
    } catch (err) {
      await rm(tmp, { force: true });
      throw new MetadataStoreError(
        'SNAPSHOTTER_METADATA_IO',
        `cannot write ${this.path}: ${(err as Error).message}`,
        {
          cause: err,
        },
      );
    }
  }
}
