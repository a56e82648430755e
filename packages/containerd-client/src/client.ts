import type { ChannelOptions } from '@grpc/grpc-js';
import { ContentService } from './services/content.js';
import { DiffService } from './services/diff.js';
import { ImagesService } from './services/images.js';
import { LeasesService } from './services/leases.js';
import { NamespacesService } from './services/namespaces.js';
import { SnapshotsService } from './services/snapshots.js';
import { type CallScope, Connection, unary } from './transport.js';

export interface ContainerdClientOptions {
  /** containerd's socket: a path (`/run/containerd/containerd.sock`) or a gRPC target (`unix:///...`). */
  address: string;
  /** containerd namespace every call runs in (`default`, `k8s.io`, ...). */
  namespace: string;
  /** Extra gRPC channel options. */
  channelOptions?: ChannelOptions;
}

/**
 * A typed client for containerd 1.6's gRPC API. Every call carries the namespace header, and the
 * lease header for views made with {@link ContainerdClient.withLease}; the calls of a
 * {@link ContainerdClient.withSignal} view are cancelled when its signal aborts. Views share one
 * connection; {@link ContainerdClient.close} on any of them closes it.
 */
export class ContainerdClient {
  readonly content: ContentService;
  readonly images: ImagesService;
  readonly leases: LeasesService;
  readonly diff: DiffService;
  readonly namespaces: NamespacesService;
  private readonly conn: Connection;
  private readonly scope: CallScope;

  constructor(options: ContainerdClientOptions);
  /** @internal a view on an existing connection */
  constructor(options: ContainerdClientOptions, conn: Connection, scope: CallScope);
  constructor(options: ContainerdClientOptions, conn?: Connection, scope?: CallScope) {
    if (!options.namespace) throw new TypeError('ContainerdClient needs a namespace (e.g. "default")');
    this.conn = conn ?? new Connection(options.address, options.channelOptions);
    this.scope = { ...scope, namespace: options.namespace };
    this.content = new ContentService(this.conn, this.scope);
    this.images = new ImagesService(this.conn, this.scope);
    this.leases = new LeasesService(this.conn, this.scope);
    this.diff = new DiffService(this.conn, this.scope);
    this.namespaces = new NamespacesService(this.conn, this.scope);
  }

  get address(): string {
    return this.conn.address;
  }

  get namespace(): string {
    return this.scope.namespace;
  }

  /** The lease this view's calls carry, if any. */
  get lease(): string | undefined {
    return this.scope.lease;
  }

  /** The Snapshots service of one snapshotter (`overlayfs`, `native`, `soci`, ...). */
  snapshots(snapshotter: string): SnapshotsService {
    return new SnapshotsService(this.conn, this.scope, snapshotter);
  }

  /** The signal this view's calls are cancelled by, if any. */
  get signal(): AbortSignal | undefined {
    return this.scope.signal;
  }

  /** A view whose calls carry `containerd-lease: <id>`, so what they create belongs to the lease. */
  withLease(id: string): ContainerdClient {
    return this.view({ lease: id });
  }

  /** A view in another namespace on the same connection. */
  withNamespace(namespace: string): ContainerdClient {
    return this.view({ namespace });
  }

  /**
   * A view whose calls `signal` cancels: one in flight is cancelled (`call.cancel()`), and it and every
   * later call fail with CONTAINERD_CANCELLED, the abort's reason as cause. Cancelling a call stops the
   * wait, not necessarily the work: containerd may have done what was asked. `undefined`: no signal.
   */
  withSignal(signal: AbortSignal | undefined): ContainerdClient {
    return this.view({ signal });
  }

  private view(change: Partial<CallScope>): ContainerdClient {
    const scope = { ...this.scope, ...change };
    return new ContainerdClient({ address: this.conn.address, namespace: scope.namespace }, this.conn, scope);
  }

  /** containerd's version; a cheap liveness check. */
  async version(): Promise<{ version: string; revision: string }> {
    return unary<object, { version: string; revision: string }>(
      this.conn,
      this.scope,
      'version',
      'Version',
      {},
    );
  }

  close(): void {
    this.conn.close();
  }
}
