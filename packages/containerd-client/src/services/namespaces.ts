import { type CallScope, type Connection, unary } from '../transport.js';
import type { Labels } from '../types.js';

/** containerd namespaces (created implicitly by the first call that uses one). */
export class NamespacesService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
  ) {}

  async list(): Promise<{ name: string; labels: Labels }[]> {
    const res = await unary<object, { namespaces: { name: string; labels?: Labels }[] }>(
      this.conn,
      this.scope,
      'namespaces',
      'List',
      {},
    );
    return res.namespaces.map((n) => ({ name: n.name, labels: { ...(n.labels ?? {}) } }));
  }

  /** Deletes an empty namespace (containerd refuses while it holds images, content or snapshots). */
  async delete(name: string): Promise<void> {
    await unary(this.conn, this.scope, 'namespaces', 'Delete', { name });
  }
}
