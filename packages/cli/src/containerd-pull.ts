/**
 * The containerd side of `soci pull`: checks that containerd and the snapshotter answer, runs
 * pullImage, and turns its failures into one line that says what to fix. Loaded on demand, so the
 * other commands never load gRPC.
 */
import {
  ContainerdClient,
  ContainerdError,
  LABEL,
  type PullReport,
  pullImage,
} from '@soci-ts/containerd-client';
import { findCause, findCode } from '@soci-ts/errors';
import type { Repository } from '@soci-ts/oci-referrers';
import { CliError } from './errors.js';

/** The daemon's default socket, for the proxy_plugins hint. */
const DEFAULT_SNAPSHOTTER_SOCKET = '/run/soci-ts/soci-snapshotter.sock';

/** A key no snapshot has: stat of it tells "snapshotter missing" (invalid argument) from "fine" (not found). */
const PROBE_KEY = 'soci-cli-probe-nonexistent';

export interface ContainerdPullOptions {
  address: string;
  namespace: string;
  ref: string;
  snapshotter: string;
  repository: Repository;
  platform?: string;
  sociIndexDigest?: string;
  unpackFallback: boolean;
  signal: AbortSignal;
}

export async function pullIntoContainerd(o: ContainerdPullOptions): Promise<PullReport> {
  const client = new ContainerdClient({ address: o.address, namespace: o.namespace });
  try {
    await checkContainerd(client, o.address);
    await checkSnapshotter(client, o.snapshotter, o.address);
    const labels: Record<string, string> = o.sociIndexDigest
      ? { [LABEL.sociIndexDigest]: o.sociIndexDigest }
      : {};
    try {
      return await pullImage({
        client,
        ref: o.ref,
        snapshotter: o.snapshotter,
        source: o.repository,
        ...(o.platform ? { platform: o.platform } : {}),
        labels: () => labels,
        unpackFallback: o.unpackFallback,
        signal: o.signal,
      });
    } catch (err) {
      if (o.signal.aborted) throw aborted(o.ref, err);
      throw explainPullFailure(err, o);
    }
  } finally {
    client.close();
  }
}

async function checkContainerd(client: ContainerdClient, address: string): Promise<void> {
  try {
    await client.version();
  } catch (err) {
    if (findCode(err, 'CONTAINERD_PERMISSION_DENIED') || /EACCES|permission denied/i.test(String(err))) {
      throw new CliError(
        'CLI_CONTAINERD_PERMISSION',
        `no permission to use containerd's socket ${address}; run soci pull as root (sudo)`,
        { cause: err },
      );
    }
    throw new CliError(
      'CLI_CONTAINERD_UNREACHABLE',
      `cannot reach containerd at ${address}; containerd must be running (systemctl start containerd) and --address must name its socket`,
      { cause: err },
    );
  }
}

async function checkSnapshotter(client: ContainerdClient, snapshotter: string, address: string) {
  try {
    await client.snapshots(snapshotter).stat(PROBE_KEY);
  } catch (err) {
    if (findCode(err, 'CONTAINERD_NOT_FOUND')) return;
    const detail = (err as Error).message;
    if (
      /not loaded|not found|invalid argument/i.test(detail) ||
      findCode(err, 'CONTAINERD_INVALID_ARGUMENT')
    ) {
      throw new CliError(
        'CLI_SNAPSHOTTER_UNKNOWN',
        `containerd at ${address} has no snapshotter "${snapshotter}"; add a proxy_plugins section to its config.toml ([proxy_plugins.${snapshotter}] type = "snapshot" address = "${DEFAULT_SNAPSHOTTER_SOCKET}") and restart containerd`,
        { cause: err },
      );
    }
    throw err;
  }
}

/** Failures with a known cause get a message that says what to fix; the rest pass through. */
function explainPullFailure(err: unknown, o: ContainerdPullOptions): unknown {
  if (findCode(err, 'REGISTRY_MANIFEST_UNKNOWN', 'REGISTRY_NAME_UNKNOWN')) {
    return new CliError(
      'CLI_IMAGE_NOT_FOUND',
      `image ${o.ref} not found in the registry; check the repository name and tag (${(err as Error).message})`,
      { cause: err },
    );
  }
  // containerd checks a proxy snapshotter only when it forwards a call to it (Prepare), so a
  // configured but stopped daemon shows up here rather than in checkSnapshotter.
  const unavailable = findCause(
    err,
    (e): e is ContainerdError =>
      e instanceof ContainerdError &&
      e.code === 'CONTAINERD_UNAVAILABLE' &&
      e.method.startsWith('snapshots.'),
  );
  if (unavailable) {
    const socket = /dial unix:?(?:\/\/)?\s*(\/[^\s":]+)/.exec(unavailable.message)?.[1];
    return new CliError(
      'CLI_SNAPSHOTTER_UNREACHABLE',
      `containerd cannot reach snapshotter "${o.snapshotter}"${socket ? ` at ${socket}` : ''}: is soci-snapshotter running on the socket its proxy_plugins section names?`,
      { cause: err },
    );
  }
  return err;
}

function aborted(ref: string, cause: unknown): CliError {
  return new CliError(
    'CLI_ABORTED',
    `pull of ${ref} interrupted; nothing was recorded, containerd's garbage collector removes the partial download`,
    { cause },
  );
}
