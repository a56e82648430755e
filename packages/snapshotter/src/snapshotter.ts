import { lchown, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL } from '@soci-ts/containerd-client';
import type { Logger } from 'pino';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  isSnapshotError,
  notFound,
  SnapshotError,
} from './errors.js';
import { type FieldAdaptor, FilterSyntaxError, parseFilters } from './filters.js';
import { detectMountOptions, diskUsage, unmountAllUnder } from './host.js';
import {
  MetadataStore,
  type SnapshotKind,
  type SnapshotRecord,
  type SnapshotUsage,
  type StoreState,
} from './metadata-store.js';
import { type Mount, type MountOptions, mountsFor } from './mounts.js';
import { NoRemoteLayers, REMOTE_LABEL_VALUE, type RemoteLayerSource, type UnmountReason } from './remote.js';

/** What containerd's snapshots.Info carries. */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

export type RemoteOutcome = 'mounted' | 'fallback' | 'timeout' | 'error';

export interface SnapshotterOptions {
  root: string;
  remote?: RemoteLayerSource;
  /** How long a remote mount may take before the layer falls back to a local unpack. */
  mountTimeoutMs?: number;
  logger: Logger;
  /** Overlay options; detected from the host when omitted. */
  mountOptions?: MountOptions;
  /** Told about every remote prepare attempt (for metrics). */
  onRemoteOutcome?: (outcome: RemoteOutcome) => void;
}

/** containerd's limit on one label (key + value), see containerd/labels. */
const MAX_LABEL_SIZE = 4096;

function validateLabels(labels: Record<string, string>): Record<string, string> {
  const kept: Record<string, string> = {};
  for (const [k, v] of Object.entries(labels)) {
    if (Buffer.byteLength(k) + Buffer.byteLength(v) > MAX_LABEL_SIZE) {
      throw invalidArgument(
        `info.Labels: label key and value greater than maximum size (${MAX_LABEL_SIZE} bytes), key: ${k.slice(0, 10)}`,
      );
    }
    if (v !== '') kept[k] = v; // containerd stores no empty label values
  }
  return kept;
}

const nowIso = () => new Date().toISOString();

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

export function toInfo(r: SnapshotRecord): SnapshotInfo {
  return {
    name: r.name,
    parent: r.parent,
    kind: r.kind,
    labels: { ...r.labels },
    created: new Date(r.created),
    updated: new Date(r.updated),
  };
}

/** Field paths of containerd's snapshot filter adaptor: kind, name, parent, labels.<key>. */
export function snapshotFields(info: SnapshotInfo): FieldAdaptor {
  return (path) => {
    switch (path[0]) {
      case 'kind':
        return info.kind;
      case 'name':
        return info.name;
      case 'parent':
        return info.parent;
      case 'labels':
        return Object.hasOwn(info.labels, path.slice(1).join('.'))
          ? info.labels[path.slice(1).join('.')]
          : undefined;
      default:
        return undefined;
    }
  };
}

/**
 * A containerd snapshotter with the semantics of containerd's overlay snapshotter, plus the
 * remote-snapshot flow: a Prepare with a target label may be served by a RemoteLayerSource,
 * in which case the layer is committed under the target and containerd is told it already exists.
 */
/** Remote snapshots mounted again at once after a start (each may wait on a registry). */
const RESTORE_CONCURRENCY = 4;

export class Snapshotter {
  private closing = new AbortController();
  private readonly remote: RemoteLayerSource;
  /** Remote snapshots being mounted again after a start, by name: true once mounted, false if it failed. */
  private readonly restores = new Map<string, Promise<boolean>>();
  private restoring: Promise<void> = Promise.resolve();

  private constructor(
    readonly root: string,
    private readonly store: MetadataStore,
    private readonly mountOptions: MountOptions,
    private readonly options: SnapshotterOptions,
  ) {
    this.remote = options.remote ?? new NoRemoteLayers();
  }

  /**
   * Opens (or creates) the snapshotter at `root` and removes half-created snapshot directories.
   * Remote layers are mounted again in the background, several at once, so that the daemon can
   * answer containerd at once; a call whose mounts need a layer still being restored waits for
   * it (see {@link whenRestored}).
   */
  static async open(options: SnapshotterOptions): Promise<Snapshotter> {
    const { root } = options;
    await mkdir(join(root, 'snapshots'), { recursive: true, mode: 0o700 });
    const store = await MetadataStore.open(root);
    const mountOptions = options.mountOptions ?? (await detectMountOptions(root));
    const sn = new Snapshotter(root, store, mountOptions, options);
    const removed = await sn.cleanup();
    if (removed.length > 0)
      options.logger.info({ removed }, 'removed snapshot directories left by an interrupted operation');
    sn.restoring = sn.restoreRemoteSnapshots();
    return sn;
  }

  /** Resolves when every remote snapshot has been restored, or has failed to be. */
  whenRestored(): Promise<void> {
    return this.restoring;
  }

  private get mountTimeoutMs(): number {
    return this.options.mountTimeoutMs ?? 30_000;
  }

  private get log(): Logger {
    return this.options.logger;
  }

  private snapshotDir(id: string) {
    return join(this.root, 'snapshots', id);
  }
  private upperPath(id: string) {
    return join(this.snapshotDir(id), 'fs');
  }
  private workPath(id: string) {
    return join(this.snapshotDir(id), 'work');
  }

  // ---- queries ----

  stat(key: string): SnapshotInfo {
    const r = this.store.get(key);
    if (!r) throw notFound('snapshot does not exist');
    return toInfo(r);
  }

  list(filters: readonly string[] = []): SnapshotInfo[] {
    let filter: ReturnType<typeof parseFilters>;
    try {
      filter = parseFilters(filters);
    } catch (err) {
      if (err instanceof FilterSyntaxError) throw invalidArgument(err.message);
      throw err;
    }
    return this.store
      .all()
      .map(toInfo)
      .filter((info) => filter.match(snapshotFields(info)))
      .sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  }

  async mounts(key: string): Promise<Mount[]> {
    const r = this.store.get(key);
    if (!r) throw notFound('failed to get active mount: snapshot does not exist');
    if (r.kind !== 'active' && r.kind !== 'view') {
      throw failedPrecondition(`failed to get active mount: requested snapshot ${key} not active or view`);
    }
    await this.chainRestored(r);
    return this.mountsOf(r, this.store.current);
  }

  async usage(key: string): Promise<SnapshotUsage> {
    const r = this.store.get(key);
    if (!r) throw notFound('snapshot does not exist');
    if (r.kind === 'active') return diskUsage(this.upperPath(r.id));
    return r.usage ?? { size: 0, inodes: 0 };
  }

  /** Counts of snapshots by kind (for metrics). */
  countByKind(): Record<SnapshotKind, number> {
    const counts: Record<SnapshotKind, number> = { active: 0, view: 0, committed: 0 };
    for (const r of this.store.all()) counts[r.kind] += 1;
    return counts;
  }

  // ---- changes ----

  async prepare(key: string, parent: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    const target = labels[LABEL.snapshotRef];
    if (target && this.isUsableTarget(target, parent)) throw alreadyExists(`target snapshot "${target}"`);
    const record = await this.createSnapshot('active', key, parent, labels);
    if (target && (await this.tryRemote(record, target, labels))) {
      throw alreadyExists(`target snapshot "${target}"`);
    }
    await this.chainRestored(record);
    return this.mountsOf(record, this.store.current);
  }

  async view(key: string, parent: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    const record = await this.createSnapshot('view', key, parent, labels);
    await this.chainRestored(record);
    return this.mountsOf(record, this.store.current);
  }

  async commit(name: string, key: string, labels: Record<string, string> = {}): Promise<void> {
    const r = this.store.get(key);
    if (!r) throw notFound(`failed to get active snapshot "${key}"`);
    const usage = r.kind === 'active' ? await diskUsage(this.upperPath(r.id)) : undefined;
    await this.commitRecord(name, key, labels, usage);
  }

  async update(
    info: { name: string; labels: Record<string, string> },
    paths: readonly string[] = [],
  ): Promise<SnapshotInfo> {
    const updated = await this.store.transaction((draft) => {
      const r = draft.snapshots[info.name];
      if (!r) throw notFound('snapshot does not exist');
      let labels = { ...r.labels };
      if (paths.length === 0) labels = { ...info.labels };
      for (const path of paths) {
        if (path.startsWith('labels.')) {
          const k = path.slice('labels.'.length);
          labels[k] = info.labels[k] ?? '';
        } else if (path === 'labels') {
          labels = { ...info.labels };
        } else {
          throw invalidArgument(`cannot update "${path}" field on snapshot "${info.name}"`);
        }
      }
      r.labels = validateLabels(labels);
      r.updated = nowIso();
      return toInfo(r);
    });
    return updated;
  }

  async remove(key: string): Promise<void> {
    const r = this.store.get(key);
    if (!r) throw notFound(`snapshot ${key}`);
    if (this.store.all().some((c) => c.parent === key)) {
      throw failedPrecondition('failed to remove: cannot remove snapshot with child');
    }
    // A restore still mounting this layer finishes first: its mount must not land in a removed directory.
    await this.restores.get(key);
    if (r.labels[LABEL.remote] !== undefined) await this.unmountRemote(r, 'snapshot-removed');
    await this.store.transaction((draft) => {
      const current = draft.snapshots[key];
      if (!current) throw notFound(`snapshot ${key}`);
      if (Object.values(draft.snapshots).some((c) => c.parent === key)) {
        throw failedPrecondition('failed to remove: cannot remove snapshot with child');
      }
      delete draft.snapshots[key];
    });
    await this.removeDir(this.snapshotDir(r.id));
  }

  /** Removes snapshot directories the metadata does not know (aborted creations, failed removals). */
  async cleanup(): Promise<string[]> {
    return this.store.exclusive(async (draft) => {
      const known = new Set(Object.values(draft.snapshots).map((r) => r.id));
      const dir = join(this.root, 'snapshots');
      const removed: string[] = [];
      for (const entry of await readdir(dir)) {
        if (known.has(entry)) continue;
        await this.removeDir(join(dir, entry));
        removed.push(entry);
      }
      return removed;
    });
  }

  /** Unmounts every remote layer and releases the remote source. */
  async close(): Promise<void> {
    this.closing.abort();
    // Restores still running end first (they see the abort), so that nothing mounts after this.
    await this.restoring;
    for (const r of this.store.all()) {
      if (r.labels[LABEL.remote] !== undefined) await this.unmountRemote(r, 'shutdown');
    }
    await this.remote.close?.();
  }

  // ---- internals ----

  /** A committed snapshot that containerd would find for this target (its lookup filters on ref label and parent). */
  private isUsableTarget(target: string, parent: string): boolean {
    const r = this.store.get(target);
    return r?.kind === 'committed' && r.parent === parent && r.labels[LABEL.snapshotRef] === target;
  }

  private parentIds(parent: string, state: Readonly<StoreState>): string[] {
    const ids: string[] = [];
    for (let name = parent; name !== ''; ) {
      const p = state.snapshots[name];
      if (!p) throw notFound(`failed to get parent chain: missing parent ${name}`);
      ids.push(p.id);
      name = p.parent;
    }
    return ids;
  }

  private mountsOf(r: SnapshotRecord, state: Readonly<StoreState>): Mount[] {
    return mountsFor(
      {
        kind: r.kind,
        upperDir: this.upperPath(r.id),
        workDir: this.workPath(r.id),
        parentDirs: this.parentIds(r.parent, state).map((id) => this.upperPath(id)),
      },
      this.mountOptions,
    );
  }

  private checkCreate(state: Readonly<StoreState>, key: string, parent: string): void {
    if (parent !== '') {
      const p = state.snapshots[parent];
      if (!p) throw notFound(`failed to create snapshot: missing parent "${parent}" bucket`);
      if (p.kind !== 'committed') {
        throw invalidArgument(`failed to create snapshot: parent "${parent}" is not committed snapshot`);
      }
    }
    if (state.snapshots[key]) throw alreadyExists(`failed to create snapshot: snapshot ${key}`);
  }

  /**
   * Creates the directories in a temporary place, moves them under their id, then records the
   * snapshot. A crash between the steps leaves a directory the metadata does not know, which
   * the next start removes. Runs inside a transaction so Cleanup never sees the temporary directory.
   */
  private async createSnapshot(
    kind: 'active' | 'view',
    key: string,
    parent: string,
    labels: Record<string, string>,
  ): Promise<SnapshotRecord> {
    if (key === '') throw invalidArgument('snapshot key must not be empty');
    const kept = validateLabels(labels);
    this.checkCreate(this.store.current, key, parent);
    return this.store.transaction(async (draft) => {
      this.checkCreate(draft, key, parent);
      const parentIds = this.parentIds(parent, draft);
      const tmp = await mkdtemp(join(this.root, 'snapshots', 'new-'));
      const id = String(draft.nextId);
      try {
        await mkdir(join(tmp, 'fs'), { mode: 0o755 });
        if (kind === 'active') await mkdir(join(tmp, 'work'), { mode: 0o711 });
        if (parentIds.length > 0) {
          // The new layer's root starts with the owner of the layer below, as containerd does.
          const st = await stat(this.upperPath(parentIds[0]!));
          await lchown(join(tmp, 'fs'), st.uid, st.gid);
        }
        // A directory under this id can only be left from a write that never reached the metadata.
        await this.removeDir(this.snapshotDir(id));
        await rename(tmp, this.snapshotDir(id));
      } catch (err) {
        await rm(tmp, { recursive: true, force: true });
        throw err;
      }
      draft.nextId += 1;
      const ts = nowIso();
      const record: SnapshotRecord = { id, name: key, kind, parent, labels: kept, created: ts, updated: ts };
      draft.snapshots[key] = record;
      return record;
    });
  }

  private async commitRecord(
    name: string,
    key: string,
    labels: Record<string, string>,
    usage: SnapshotUsage | undefined,
  ): Promise<void> {
    const kept = validateLabels(labels);
    await this.store.transaction((draft) => {
      if (draft.snapshots[name]) throw alreadyExists(`failed to commit snapshot: committed snapshot ${name}`);
      const r = draft.snapshots[key];
      if (!r) throw notFound(`failed to commit snapshot: failed to get active snapshot "${key}"`);
      if (r.kind !== 'active')
        throw failedPrecondition(`failed to commit snapshot: snapshot "${key}" is not active`);
      delete draft.snapshots[key];
      const ts = nowIso();
      draft.snapshots[name] = {
        ...r,
        name,
        kind: 'committed',
        labels: kept,
        created: ts,
        updated: ts,
        usage: usage ?? { size: 0, inodes: 0 },
      };
    });
  }

  /**
   * Offers the layer to the remote source. True when it is now committed as `target` (or a
   * concurrent prepare committed it first); false to let containerd unpack into `record`.
   */
  private async tryRemote(
    record: SnapshotRecord,
    target: string,
    labels: Record<string, string>,
  ): Promise<boolean> {
    const mountpoint = this.upperPath(record.id);
    const attempt = new AbortController();
    const onClose = () => attempt.abort();
    this.closing.signal.addEventListener('abort', onClose);
    const timeoutMs = this.mountTimeoutMs;
    let stopTimer = () => {};
    const timedOut = new Promise<'timeout'>((resolve) => {
      const timer = setTimeout(resolve, timeoutMs, 'timeout');
      stopTimer = () => clearTimeout(timer);
    });
    const pending = this.remote
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
        this.options.onRemoteOutcome?.('timeout');
        // A mount that completes late must not stay on the directory containerd now unpacks into.
        void pending.then((late) => {
          if (late === 'mounted') return this.remote.unmount(mountpoint, 'mount-abandoned');
        });
        return false;
      }
      if (result !== 'mounted') {
        if ('error' in result) {
          log.error({ err: result.error }, 'remote layer source failed; falling back to local unpack');
          this.options.onRemoteOutcome?.('error');
        } else {
          log.debug({ reason: result.fallback }, 'layer is not remote; falling back to local unpack');
          this.options.onRemoteOutcome?.('fallback');
        }
        return false;
      }
    } finally {
      stopTimer();
      this.closing.signal.removeEventListener('abort', onClose);
    }
    try {
      await this.commitRecord(
        target,
        record.name,
        { ...labels, [LABEL.remote]: REMOTE_LABEL_VALUE },
        undefined,
      );
      log.info('layer mounted remotely');
      this.options.onRemoteOutcome?.('mounted');
      return true;
    } catch (err) {
      await this.remote.unmount(mountpoint, 'mount-abandoned').catch(() => undefined);
      await this.remove(record.name).catch(() => undefined);
      if (isSnapshotError(err, 'ALREADY_EXISTS')) return true;
      throw err;
    }
  }

  private async unmountRemote(r: SnapshotRecord, why: UnmountReason): Promise<void> {
    const mountpoint = this.upperPath(r.id);
    try {
      await this.remote.unmount(mountpoint, why);
    } catch (err) {
      this.log.warn({ err, name: r.name }, 'remote layer source could not unmount; detaching the mount');
      await unmountAllUnder(mountpoint);
    }
  }

  /**
   * Waits until every remote layer below `r` is mounted again after a start. An overlay over a
   * layer whose mount is missing would show an empty directory where the layer's files are: a
   * layer that could not be restored fails the call instead.
   */
  private async chainRestored(r: SnapshotRecord): Promise<void> {
    if (this.restores.size === 0) return;
    for (let name = r.parent; name !== ''; ) {
      const restored = this.restores.get(name);
      if (restored && !(await restored)) {
        throw new SnapshotError(
          'UNAVAILABLE',
          `layer ${name} could not be mounted again after the snapshotter restarted (see its log); remove the image and pull it again`,
        );
      }
      name = this.store.get(name)?.parent ?? '';
    }
  }

  /** Mounts every remote snapshot again, RESTORE_CONCURRENCY at a time, each bounded by the mount timeout. */
  private async restoreRemoteSnapshots(): Promise<void> {
    const remote = this.store
      .all()
      .filter((r) => r.kind === 'committed' && r.labels[LABEL.remote] !== undefined);
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
    const now = this.store
      .all()
      .filter((r) => r.kind === 'committed' && r.labels[LABEL.remote] !== undefined);
    await this.remote.restored?.(now).catch((err: unknown) => {
      this.log.warn({ err }, 'remote layer source could not tidy its cache after the restore');
    });
  }

  private async restoreOne(r: SnapshotRecord): Promise<boolean> {
    const mountpoint = this.upperPath(r.id);
    const attempt = new AbortController();
    const onClose = () => attempt.abort();
    this.closing.signal.addEventListener('abort', onClose);
    try {
      if (this.closing.signal.aborted) throw new Error('the snapshotter is closing');
      const restored = this.remote.restore({
        name: r.name,
        labels: r.labels,
        mountpoint,
        signal: attempt.signal,
      });
      if ((await raceTimeout(restored, this.mountTimeoutMs)) === 'timeout') {
        attempt.abort();
        // A mount that completes late must not stay: the layer counts as not restored.
        void restored.then(
          () => this.remote.unmount(mountpoint, 'mount-abandoned'),
          () => undefined,
        );
        throw new Error(`no answer within ${this.mountTimeoutMs} ms`);
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
      this.closing.signal.removeEventListener('abort', onClose);
    }
  }

  private async removeDir(dir: string): Promise<void> {
    await unmountAllUnder(dir);
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.log.warn({ err, dir }, 'failed to remove snapshot directory; the next Cleanup retries');
    }
  }
}
