import { type CallScope, type Connection, unary } from '../transport.js';
import {
  type Descriptor,
  fromDescriptor,
  fromMount,
  type Mount,
  toDescriptor,
  type WireDescriptor,
} from '../types.js';

/** containerd's Diff service (the walking differ): applies a layer blob from the content store onto mounts. */
export class DiffService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
  ) {}

  /**
   * Applies the layer `diff` (which must be in the content store) onto `mounts` and answers the
   * descriptor of what was applied: its digest is the layer's uncompressed digest (diff ID).
   */
  async apply(diff: Descriptor, mounts: Mount[]): Promise<Descriptor> {
    const res = await unary<object, { applied: WireDescriptor }>(this.conn, this.scope, 'diff', 'Apply', {
      diff: fromDescriptor(diff),
      mounts: mounts.map(fromMount),
      payloads: {},
    });
    return toDescriptor(res.applied);
  }
}
