import { randomBytes } from 'node:crypto';
import { type CallScope, type Connection, unary } from '../transport.js';
import { type Labels, type Lease, toDate, type WireTimestamp } from '../types.js';

interface WireLease {
  id: string;
  createdAt?: WireTimestamp;
  labels?: Labels;
}

/** Label containerd's garbage collector reads to drop a lease after a time (RFC 3339). */
export const LEASE_EXPIRE_LABEL = 'containerd.io/gc.expire';

/** containerd leases: while a lease lives, everything created under it is safe from garbage collection. */
export class LeasesService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
  ) {}

  /** Creates a lease; `expiresInMs` sets containerd's gc.expire label so a crashed client leaks nothing for long. */
  async create(options: { id?: string; labels?: Labels; expiresInMs?: number } = {}): Promise<Lease> {
    const labels: Labels = { ...(options.labels ?? {}) };
    if (options.expiresInMs !== undefined) {
      labels[LEASE_EXPIRE_LABEL] = new Date(Date.now() + options.expiresInMs).toISOString();
    }
    const res = await unary<object, { lease: WireLease }>(this.conn, this.scope, 'leases', 'Create', {
      id: options.id ?? randomLeaseId(),
      labels,
    });
    return toLease(res.lease);
  }

  /** Deletes a lease; with `sync` containerd runs garbage collection before answering. */
  async delete(id: string, options: { sync?: boolean } = {}): Promise<void> {
    await unary(this.conn, this.scope, 'leases', 'Delete', { id, sync: options.sync ?? false });
  }

  /**
   * References an existing resource by the lease, so garbage collection keeps it while the lease
   * lives (a snapshot: type `snapshots/<snapshotter>`, id its name).
   */
  async addResource(id: string, resource: { id: string; type: string }): Promise<void> {
    await unary(this.conn, this.scope, 'leases', 'AddResource', { id, resource });
  }

  async list(filters: string[] = []): Promise<Lease[]> {
    const res = await unary<object, { leases: WireLease[] }>(this.conn, this.scope, 'leases', 'List', {
      filters,
    });
    return res.leases.map(toLease);
  }

  async listResources(id: string): Promise<{ id: string; type: string }[]> {
    const res = await unary<object, { resources: { id: string; type: string }[] }>(
      this.conn,
      this.scope,
      'leases',
      'ListResources',
      { id },
    );
    return res.resources;
  }
}

function toLease(lease: WireLease): Lease {
  return { id: lease.id, createdAt: toDate(lease.createdAt), labels: { ...(lease.labels ?? {}) } };
}

/** `<ms>-<random>`, unique enough to never collide with a concurrent pull (like containerd's WithRandomID). */
function randomLeaseId(): string {
  return `soci-${Date.now()}-${randomBytes(6).toString('base64url')}`;
}
