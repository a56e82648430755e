/** The value of `containerd.io/snapshot/remote` (containerd-client's LABEL.remote) on our remote snapshots. */
export const REMOTE_LABEL_VALUE = 'remote snapshot';

export interface RemotePrepareRequest {
  /** Snapshot key as containerd sent it (namespaced, e.g. `default/12/extract-... sha256:...`). */
  key: string;
  /** Chain ID the layer will be committed as (value of `containerd.io/snapshot.ref`). */
  target: string;
  /** Name of the committed parent snapshot, '' for the bottom layer. */
  parent: string;
  /** All labels of the Prepare request (`containerd.io/snapshot/cri.*`, `.../remote/soci.*`, ...). */
  labels: Readonly<Record<string, string>>;
  /** Empty directory to mount the layer's file tree on. */
  mountpoint: string;
  /** Aborted when the mount timeout passes or the daemon shuts down: give up and do not mount. */
  signal: AbortSignal;
  /**
   * The source fetches and unpacks the layer whole instead of mounting it: the mount timeout no
   * longer applies (the download's own deadlines bound it; `signal` still aborts at shutdown).
   */
  unpacking(): void;
}

/** 'mounted': the layer is mounted on the mountpoint; fallback: containerd should fetch and unpack it. */
export type RemotePrepareResult = 'mounted' | { fallback: string };

export interface RemoteRestoreRequest {
  /** Committed snapshot name (the chain ID). */
  name: string;
  labels: Readonly<Record<string, string>>;
  mountpoint: string;
  signal: AbortSignal;
}

/**
 * Where remote (lazily loaded) layers come from. The snapshotter calls it for every Prepare
 * that carries a target; it decides from the labels whether it can serve the layer.
 */
export interface RemoteLayerSource {
  /** Mount the layer of a Prepare on `mountpoint`, or say why it cannot. Must not throw for "cannot". */
  prepareRemote(request: RemotePrepareRequest): Promise<RemotePrepareResult>;
  /** Mount a remote snapshot again after a daemon restart; throw when that is impossible. */
  restore(request: RemoteRestoreRequest): Promise<void>;
  /**
   * Unmount what prepareRemote/restore mounted on `mountpoint`. `why` says whether the layer's
   * cached data may go: only when its snapshot was removed (and no other mount uses the layer).
   */
  unmount(mountpoint: string, why: UnmountReason): Promise<void>;
  /**
   * Called once after the start-up restore with every remote snapshot there is (restored or
   * not): a source may drop cached data of layers none of them uses.
   */
  restored?(snapshots: readonly { labels: Readonly<Record<string, string>> }[]): Promise<void>;
  /** Release everything (called once at shutdown, after the unmounts). */
  close?(): Promise<void>;
}

/** Why a remote layer is unmounted: its snapshot was removed, the daemon stops, or a late mount is abandoned. */
export type UnmountReason = 'snapshot-removed' | 'shutdown' | 'mount-abandoned';

/** The default: no remote layers, every layer is fetched and unpacked by containerd. */
export class NoRemoteLayers implements RemoteLayerSource {
  async prepareRemote(): Promise<RemotePrepareResult> {
    return { fallback: 'no remote layer source is configured' };
  }
  async restore(request: RemoteRestoreRequest): Promise<void> {
    throw new Error(`cannot restore remote snapshot ${request.name}: no remote layer source is configured`);
  }
  async unmount(): Promise<void> {}
}
