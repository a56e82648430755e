import { lchown, mkdir, mkdtemp, readdir, rename, rm, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL } from '@soci-ts/containerd-client';
import type { Logger } from 'pino';
import { alreadyExists, failedPrecondition, invalidArgument, notFound } from './errors.js';
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
import { NoRemoteLayers, type RemoteLayerSource } from './remote.js';
import { type RemoteOutcome, RemoteSnapshots } from './remote-snapshots.js';

/** What containerd's snapshots.Info carries. */
export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  labels: Record<string, string>;
  created: Date;
  updated: Date;
}

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
export class Snapshotter {
  private readonly closing = new AbortController();
  /** The remote-snapshot flow (remote prepares, restores after a start, unmounts). */
  private readonly remoteSnapshots: RemoteSnapshots;

  private constructor(
    readonly root: string,
    private readonly store: MetadataStore,
    private readonly mountOptions: MountOptions,
    private readonly options: SnapshotterOptions,
  ) {
    this.remoteSnapshots = new RemoteSnapshots({
      store,
      remote: options.remote ?? new NoRemoteLayers(),
      logger: options.logger,
      closing: this.closing.signal,
      mountTimeoutMs: options.mountTimeoutMs ?? 30_000,
      onRemoteOutcome: (outcome) => this.options.onRemoteOutcome?.(outcome),
      mountpoint: (r) => this.upperPath(r.id),
      commit: (name, key, labels) => this.commitRecord(name, key, labels, undefined),
      remove: (key) => this.remove(key),
    });
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
    sn.remoteSnapshots.startRestoring();
    return sn;
  }

  /** Resolves when every remote snapshot has been restored, or has failed to be. */
  whenRestored(): Promise<void> {
    return this.remoteSnapshots.whenRestored();
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
    await this.remoteSnapshots.chainRestored(r);
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
    if (target && (await this.remoteSnapshots.tryMount(record, target, labels))) {
      throw alreadyExists(`target snapshot "${target}"`);
    }
    await this.remoteSnapshots.chainRestored(record);
    return this.mountsOf(record, this.store.current);
  }

  async view(key: string, parent: string, labels: Record<string, string> = {}): Promise<Mount[]> {
    const record = await this.createSnapshot('view', key, parent, labels);
    await this.remoteSnapshots.chainRestored(record);
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
    await this.remoteSnapshots.releaseForRemoval(r);
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
    await this.remoteSnapshots.close();
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

  private async removeDir(dir: string): Promise<void> {
    await unmountAllUnder(dir);
    try {
      await rm(dir, { recursive: true, force: true });
    } catch (err) {
      this.log.warn({ err, dir }, 'failed to remove snapshot directory; the next Cleanup retries');
    }
  }
}
