import { LABEL } from '@soci-ts/containerd-client';
import type { Logger } from 'pino';
import { isSnapshotError, SnapshotError } from './errors.js';
import { unmountAllUnder } from './host.js';
import type { MetadataStore, SnapshotRecord } from './metadata-store.js';
import { REMOTE_LABEL_VALUE, type RemoteLayerSource, type UnmountReason } from './remote.js';

export type RemoteOutcome = 'mounted' | 'fallback' | 'timeout' | 'error';

/** What the remote-snapshot flow needs of the Snapshotter it serves. */
export interface RemoteSnapshotsHost {
  store: MetadataStore;
  remote: RemoteLayerSource;
  logger: Logger;
  /** Aborted when the snapshotter closes: mounts and restores under way give up. */
  closing: AbortSignal;
  /** How long a remote mount may take before the layer falls back to a local unpack. */
  mountTimeoutMs: number;
  /** Told about every remote prepare attempt (for metrics). */
  onRemoteOutcome(outcome: RemoteOutcome): void;
  /** The directory a snapshot's layer is mounted on: its upper directory. */
  mountpoint(r: SnapshotRecord): string;
  /** Commits the active snapshot `key` as `name`, with no disk usage of its own. */
  commit(name: string, key: string, labels: Record<string, string>): Promise<void>;
  /** Removes a snapshot and its directory. */
  remove(key: string): Promise<void>;
}

/** Remote snapshots mounted again at once after a start (each may wait on a registry). */
const RESTORE_CONCURRENCY = 4;

/** Settles with `p`, or with 'timeout' once `ms` have passed. */
async function raceTimeout<T>(p: Promise<T>, ms: number): Promise<T | 'timeout'> {
  let timer: NodeJS.Timeout | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<'timeout'>((resolve) => {
        timer = setTimeout(resolve, ms, 'timeout');
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * The remote-snapshot flow of a Snapshotter: a Prepare with a target label offered to the RemoteLayerSource
 * (the layer committed under the target when it mounts), remote layers mounted again after a start, and
 * unmounted when their snapshot goes or the snapshotter closes.
 */
export class RemoteSnapshots {
  /** Remote snapshots being mounted again after a start, by name: true once mounted, false if it failed. */
  private readonly restores = new Map<string, Promise<boolean>>();
  private restoring: Promise<void> = Promise.resolve();

  constructor(private readonly host: RemoteSnapshotsHost) {}

  private get log(): Logger {
    return this.host.logger;
  }

  /** Starts mounting every remote snapshot again, in the background (see {@link whenRestored}). */
  startRestoring(): void {
    this.restoring = this.restoreRemoteSnapshots();
  }

  /** Resolves when every remote snapshot has been restored, or has failed to be. */
  whenRestored(): Promise<void> {
    return this.restoring;
  }

  /**
   * Offers the layer to the remote source. True when it is now committed as `target` (or a
   * concurrent prepare committed it first); false to let containerd unpack into `record`.
   */
  async tryMount(record: SnapshotRecord, target: string, labels: Record<string, string>): Promise<boolean> {
    const mountpoint = this.host.mountpoint(record);
    const attempt = new AbortController();
    const onClose = () => attempt.abort();
    this.host.closing.addEventListener('abort', onClose);
    const timeoutMs = this.host.mountTimeoutMs;
    let stopTimer = () => {};
    const timedOut = new Promise<'timeout'>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs, 'timeout');
      stopTimer = () => clearTimeout(timer);
    });
    const pending = this.host.remote
      .prepareRemote({
        key: record.name,
        target,
        parent: record.parent,
        labels,
        mountpoint,
        signal: attempt.signal,
        unpacking: () => stopTimer(),
      })
      .catch((err: unknown) => ({ error: err }));
    const log = this.log.child({ key: record.name, target });
    try {
      const result = await Promise.race([pending, timedOut]);
      if (result === 'timeout') {
        attempt.abort();
        log.warn({ timeoutMs }, 'remote mount timed out; falling back to local unpack');
        this.host.onRemoteOutcome('timeout');
        // A mount that completes late must not stay on the directory containerd now unpacks into.
        void pending.then((late) => {
          if (late === 'mounted') return this.host.remote.unmount(mountpoint, 'mount-abandoned');
        });
        return false;
      }
      if (result !== 'mounted') {
        if ('error' in result) {
          log.error({ err: result.error }, 'remote layer source failed; falling back to local unpack');
          this.host.onRemoteOutcome('error');
        } else {
          log.debug({ reason: result.fallback }, 'layer is not remote; falling back to local unpack');
          this.host.onRemoteOutcome('fallback');
        }
        return false;
      }
    } finally {
      stopTimer();
      this.host.closing.removeEventListener('abort', onClose);
    }
    try {
      await this.host.commit(target, record.name, { ...labels, [LABEL.remote]: REMOTE_LABEL_VALUE });
      log.info('layer mounted remotely');
      this.host.onRemoteOutcome('mounted');
      return true;
    } catch (err) {
      await this.host.remote.unmount(mountpoint, 'mount-abandoned').catch(() => undefined);
      await this.host.remove(record.name).catch(() => undefined);
      if (isSnapshotError(err, 'SNAPSHOTTER_ALREADY_EXISTS')) return true;
      throw err;
    }
  }

  /** Before snapshot `r` is removed: its restore ends, then its remote layer (if any) is unmounted. */
  async releaseForRemoval(r: SnapshotRecord): Promise<void> {
    // A restore still mounting this layer finishes first: its mount must not land in a removed directory.
    await this.restores.get(r.name);
    if (r.labels[LABEL.remote] !== undefined) await this.unmount(r, 'snapshot-removed');
  }

  /** Unmounts every remote layer and releases the remote source; call after `closing` is aborted. */
  async close(): Promise<void> {
    // Restores still running end first (they see the abort), so that nothing mounts after this.
    await this.restoring;
    for (const r of this.host.store.all()) {
      if (r.labels[LABEL.remote] !== undefined) await this.unmount(r, 'shutdown');
    }
    await this.host.remote.close?.();
  }

  /**
   * Waits until every remote layer below `r` is mounted again after a start. An overlay over a
   * layer whose mount is missing would show an empty directory where the layer's files are: a
   * layer that could not be restored fails the call instead.
   */
  async chainRestored(r: SnapshotRecord): Promise<void> {
    if (this.restores.size === 0) return;
    for (let name = r.parent; name !== ''; ) {
      const restored = this.restores.get(name);
      if (restored && !(await restored)) {
        throw new SnapshotError(
          'SNAPSHOTTER_UNAVAILABLE',
          `layer ${name} could not be mounted again after the snapshotter restarted (see its log); remove the image and pull it again`,
        );
      }
      name = this.host.store.get(name)?.parent ?? '';
    }
  }

  private async unmount(r: SnapshotRecord, why: UnmountReason): Promise<void> {
    const mountpoint = this.host.mountpoint(r);
    try {
      await this.host.remote.unmount(mountpoint, why);
    } catch (err) {
      this.log.warn({ err, name: r.name }, 'remote layer source could not unmount; detaching the mount');
      await unmountAllUnder(mountpoint);
    }
  }

  /** Mounts every remote snapshot again, RESTORE_CONCURRENCY at a time, each bounded by the mount timeout. */
  private async restoreRemoteSnapshots(): Promise<void> {
    const remote = this.committedRemote();
    const queue = [...remote];
    // Registered before the first await: a call arriving now already sees what it must wait for.
    const settle = new Map<string, (ok: boolean) => void>();
    for (const r of remote) {
      this.restores.set(r.name, new Promise<boolean>((resolve) => settle.set(r.name, resolve)));
    }
    const worker = async () => {
      for (let r = queue.shift(); r; r = queue.shift()) settle.get(r.name)!(await this.restoreOne(r));
    };
    await Promise.all(Array.from({ length: Math.min(RESTORE_CONCURRENCY, remote.length) }, worker));
    // The daemon served meanwhile: tell the source of every remote snapshot there is now.
    const now = this.committedRemote();
    await this.host.remote.restored?.(now).catch((err: unknown) => {
      this.log.warn({ err }, 'remote layer source could not tidy its cache after the restore');
    });
  }

  private committedRemote(): SnapshotRecord[] {
    return this.host.store
      .all()
      .filter((r) => r.kind === 'committed' && r.labels[LABEL.remote] !== undefined);
  }

  private async restoreOne(r: SnapshotRecord): Promise<boolean> {
    const mountpoint = this.host.mountpoint(r);
    const attempt = new AbortController();
    const onClose = () => attempt.abort();
    this.host.closing.addEventListener('abort', onClose);
    try {
      if (this.host.closing.aborted) throw new Error('the snapshotter is closing');
      const restored = this.host.remote.restore({
        name: r.name,
        labels: r.labels,
        mountpoint,
        signal: attempt.signal,
      });
      if ((await raceTimeout(restored, this.host.mountTimeoutMs)) === 'timeout') {
        attempt.abort();
        // A mount that completes late must not stay: the layer counts as not restored.
        void restored.then(
          () => this.host.remote.unmount(mountpoint, 'mount-abandoned'),
          () => undefined,
        );
        throw new Error(`no answer within ${this.host.mountTimeoutMs} ms`);
      }
      this.log.info({ name: r.name }, 'remote snapshot restored');
      return true;
    } catch (err) {
      this.log.error(
        { err, name: r.name },
        'cannot restore remote snapshot; containers cannot use it until it is removed and pulled again',
      );
      return false;
    } finally {
      this.host.closing.removeEventListener('abort', onClose);
    }
  }
}
