import { type CallScope, type Connection, serverStream, unary } from '../transport.js';
import {
  type Labels,
  type Mount,
  type SnapshotInfo,
  type SnapshotKind,
  type SnapshotUsage,
  toDate,
  toMount,
  type WireTimestamp,
} from '../types.js';

interface WireSnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  createdAt?: WireTimestamp;
  updatedAt?: WireTimestamp;
  labels?: Labels;
}

type WireMount = { type: string; source: string; target?: string; options?: string[] };

/** One snapshotter (`overlayfs`, `native`, a proxy plugin such as `soci`) through containerd's Snapshots service. */
export class SnapshotsService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
    readonly snapshotter: string,
  ) {}

  /** An active (writable) snapshot on `parent` ('' for none); answers the mounts to fill it. */
  async prepare(key: string, parent = '', labels: Labels = {}): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('Prepare', { key, parent, labels });
    return res.mounts.map(toMount);
  }

  /** A read-only view of `parent`. */
  async view(key: string, parent = '', labels: Labels = {}): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('View', { key, parent, labels });
    return res.mounts.map(toMount);
  }

  async mounts(key: string): Promise<Mount[]> {
    const res = await this.call<{ mounts: WireMount[] }>('Mounts', { key });
    return res.mounts.map(toMount);
  }

  /** Commits the active snapshot `key` as `name`. */
  async commit(name: string, key: string, labels: Labels = {}): Promise<void> {
    await this.call('Commit', { name, key, labels });
  }

  async stat(key: string): Promise<SnapshotInfo> {
    const res = await this.call<{ info: WireSnapshotInfo }>('Stat', { key });
    return toSnapshotInfo(res.info);
  }

  /** Sets the given labels only (an empty value deletes one). */
  async updateLabels(key: string, labels: Labels): Promise<SnapshotInfo> {
    const res = await this.call<{ info: WireSnapshotInfo }>('Update', {
      info: { name: key, labels },
      updateMask: { paths: Object.keys(labels).map((k) => `labels.${k}`) },
    });
    return toSnapshotInfo(res.info);
  }

  async usage(key: string): Promise<SnapshotUsage> {
    const res = await this.call<{ size: number; inodes: number }>('Usage', { key });
    return { size: Number(res.size), inodes: Number(res.inodes) };
  }

  async remove(key: string): Promise<void> {
    await this.call('Remove', { key });
  }

  async list(filters: string[] = []): Promise<SnapshotInfo[]> {
    const out: SnapshotInfo[] = [];
    for await (const page of serverStream<object, { info: WireSnapshotInfo[] }>(
      this.conn,
      this.scope,
      'snapshots',
      'List',
      { snapshotter: this.snapshotter, filters },
    )) {
      out.push(...page.info.map(toSnapshotInfo));
    }
    return out;
  }

  private call<Res>(method: string, request: object): Promise<Res> {
    return unary<object, Res>(this.conn, this.scope, 'snapshots', method, {
      snapshotter: this.snapshotter,
      ...request,
    });
  }
}

function toSnapshotInfo(info: WireSnapshotInfo): SnapshotInfo {
  return {
    name: info.name,
    parent: info.parent,
    kind: info.kind,
    createdAt: toDate(info.createdAt),
    updatedAt: toDate(info.updatedAt),
    labels: { ...(info.labels ?? {}) },
  };
}
