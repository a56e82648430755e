import type { ContainerdClient } from '../client.js';
import { isAlreadyExists, isNotFound, PullError } from '../errors.js';
import type { SnapshotsService } from '../services/snapshots.js';
import type { Descriptor, Labels } from '../types.js';
import { refKey, unpackKey } from './containerd-keys.js';
import { LABEL, snapshotLabels } from './labels.js';
import { pullFailure, pullStep } from './pull-errors.js';
import type { PullSource } from './source.js';

/** What happened to one layer. */
export interface LayerReport {
  digest: string;
  diffId: string;
  chainId: string;
  size: number;
  /** `present`: snapshot existed; `remote`: committed by the snapshotter on Prepare; `unpacked`: downloaded and applied here. */
  mode: 'present' | 'remote' | 'unpacked';
  /** Layer bytes downloaded from the registry (0 when the content store had it). */
  bytesFetched: number;
  durationMs: number;
}

const PREPARE_TRIES = 3;

/** One layer of a pull: the image it belongs to, its chain, and where its snapshot and blob go. */
export interface LayerJob {
  /** The pull's leased client view, whose calls the pull's signal cancels. */
  client: ContainerdClient;
  snapshots: SnapshotsService;
  /** Whose reads the pull's signal cancels. */
  signal: AbortSignal | undefined;
  imageName: string;
  source: PullSource;
  manifestDesc: Descriptor;
  layers: readonly Descriptor[];
  index: number;
  diffId: string;
  chainId: string;
  parent: string;
  extraLabels: Labels;
  unpackFallback: boolean;
  sourceLabels: Labels;
  /** The pull's lease: a layer found present is added to it, so gc cannot take it before its child is prepared. */
  leaseId: string;
}

/** Stat, Prepare with labels, and if the snapshotter did not commit remotely: fetch, apply, commit. */
export async function pullLayer(job: LayerJob): Promise<LayerReport> {
  const started = performance.now();
  const layer = job.layers[job.index]!;
  const report = (mode: LayerReport['mode'], bytesFetched = 0): LayerReport => ({
    digest: layer.digest,
    diffId: job.diffId,
    chainId: job.chainId,
    size: layer.size,
    mode,
    bytesFetched,
    durationMs: performance.now() - started,
  });

  if (await snapshotExists(job.snapshots, job.chainId)) {
    // Held by nothing else maybe (what a failed pull committed): keep it for the layers above.
    await pullStep(`lease snapshot ${job.chainId}`, () =>
      job.client.leases.addResource(job.leaseId, {
        id: job.chainId,
        type: `snapshots/${job.snapshots.snapshotter}`,
      }),
    );
    if (await snapshotExists(job.snapshots, job.chainId)) return report('present');
  }
  const labels = snapshotLabels(
    {
      imageRef: job.imageName,
      manifestDigest: job.manifestDesc.digest,
      layers: job.layers,
      index: job.index,
      chainId: job.chainId,
    },
    job.extraLabels,
  );

  let key = '';
  let mounts: Awaited<ReturnType<SnapshotsService['prepare']>> | undefined;
  for (let attempt = 1; attempt <= PREPARE_TRIES && !mounts; attempt++) {
    key = unpackKey(job.chainId);
    try {
      mounts = await job.snapshots.prepare(key, job.parent, labels);
    } catch (err) {
      if (!isAlreadyExists(err)) {
        // A cancelled Prepare may still have been done: remove what it may have made.
        if (job.signal?.aborted) await removeQuietly(job, key);
        throw pullFailure(`prepare snapshot for layer ${layer.digest}`, err);
      }
      // The snapshotter committed the target itself (a remote layer), or a concurrent pull did.
      if (await snapshotExists(job.snapshots, job.chainId)) return report('remote');
    }
  }
  if (!mounts) {
    throw new PullError(
      'PULL_CONTAINERD_FAILED',
      `snapshotter ${job.snapshots.snapshotter} kept answering "already exists" for layer ${layer.digest} without a snapshot ${job.chainId}`,
    );
  }

  try {
    if (!job.unpackFallback) {
      throw new PullError(
        'PULL_UNPACK_DISABLED',
        `snapshotter ${job.snapshots.snapshotter} did not mount layer ${layer.digest} remotely and unpackFallback is off: check that the snapshotter is the remote one and the image has a SOCI index`,
      );
    }
    const written = await storeLayer(job, layer);
    const applied = await pullStep(`apply layer ${layer.digest}`, () => job.client.diff.apply(layer, mounts));
    if (applied.digest !== job.diffId) {
      throw new PullError(
        'PULL_UNPACK_FAILED',
        `layer ${layer.digest} unpacked to ${applied.digest} but the image config says its diff ID is ${job.diffId}`,
      );
    }
    try {
      await job.snapshots.commit(job.chainId, key, labels);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
      await removeQuietly(job, key); // committed meanwhile by a concurrent pull
      return report('present', written);
    }
    await pullStep('label layer', () =>
      job.client.content.updateLabels(layer.digest, { [LABEL.uncompressed]: job.diffId }),
    );
    return report('unpacked', written);
  } catch (err) {
    await removeQuietly(job, key);
    throw pullFailure(`unpack layer ${layer.digest}`, err);
  }
}

/**
 * Puts the layer blob into the content store (downloading only when it is not there yet). Bytes that
 * are not the layer fail here: the registry's stream checks them (REGISTRY_DIGEST_MISMATCH), and the
 * content writer again (CONTAINERD_FAILED_PRECONDITION).
 */
async function storeLayer(job: LayerJob, layer: Descriptor): Promise<number> {
  const result = await pullStep(`download layer ${layer.digest} into the content store`, () =>
    job.client.content.writeBlob({
      ref: refKey('layer', layer),
      expected: layer,
      data: () => job.source.fetchBlob(layer, { signal: job.signal }),
      labels: job.sourceLabels,
    }),
  );
  return result.written;
}

async function snapshotExists(snapshots: SnapshotsService, key: string): Promise<boolean> {
  try {
    await snapshots.stat(key);
    return true;
  } catch (err) {
    if (isNotFound(err)) return false;
    throw pullFailure(`stat snapshot ${key}`, err);
  }
}

/** Removes an extraction snapshot; not cancelled by the pull's signal, so an abort leaves none. */
async function removeQuietly(job: LayerJob, key: string): Promise<void> {
  if (!key) return;
  const snapshots = job.client.withSignal(undefined).snapshots(job.snapshots.snapshotter);
  await snapshots.remove(key).catch(() => undefined);
}
