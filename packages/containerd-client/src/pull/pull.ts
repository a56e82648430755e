import {
  formatReference,
  hostPlatform,
  isLayerMediaType,
  type Platform,
  parsePlatform,
  parseReference,
  type Reference,
} from '@soci-ts/oci-referrers';
import type { ContainerdClient } from '../client.js';
import { isAlreadyExists, isNotFound, PullError } from '../errors.js';
import type { Descriptor, Labels } from '../types.js';
import { chainIds } from './chain-id.js';
import { refKey } from './containerd-keys.js';
import { configSnapshotGcLabel, distributionSourceLabel, manifestGcLabels } from './labels.js';
import { type LayerReport, pullLayer } from './layer-pull.js';
import { pullStep } from './pull-errors.js';
import { isManifestType, type PullSource } from './source.js';

export interface PullImageOptions {
  client: ContainerdClient;
  /** Image reference, e.g. `127.0.0.1:5000/app:1` (normalized like containerd: `docker.io/library/...`). */
  ref: string;
  /** Snapshotter to unpack into: `overlayfs`, or a remote one such as `soci`. */
  snapshotter: string;
  /** Where the image is read from: the repository `ref` names (`new RegistryClient().repository(ref)` of @soci-ts/oci-referrers). */
  source: PullSource;
  /** Platform to pick from an index: `linux/amd64` or a Platform; the host's by default. */
  platform?: string | Platform;
  /** Extra `containerd.io/snapshot/...` labels for a layer's Prepare, e.g. the SOCI index digest. */
  labels?: (layer: Descriptor, index: number) => Labels;
  /**
   * When the snapshotter prepares a layer instead of committing it remotely: download the layer and
   * apply it through containerd's Diff service (true, the default), or fail with PULL_UNPACK_DISABLED.
   */
  unpackFallback?: boolean;
  /**
   * Stops the pull with PULL_ABORTED (cause: the signal's reason): the registry reads and containerd
   * calls in flight are cancelled, and nothing starts after the abort. The lease is deleted, an
   * unfinished ingest aborted and an unfinished extraction snapshot removed, as on any failure; the
   * image record is written whole or not at all.
   */
  signal?: AbortSignal;
  /** Labels for the image record. */
  imageLabels?: Labels;
  /** How long the pull's lease lives if this process dies mid-pull (default one hour). */
  leaseExpiresInMs?: number;
}

export interface PullReport {
  /** The image record's name. */
  name: string;
  manifest: Descriptor;
  config: Descriptor;
  snapshotter: string;
  /** Chain ID of the top layer: the snapshot a container's rootfs is prepared on. */
  chainId: string;
  layers: LayerReport[];
  /** Manifest, config and layer bytes downloaded. */
  bytesFetched: number;
  /** Whole pull, and the part spent resolving manifest and config. */
  durationMs: number;
  resolveMs: number;
}

const DEFAULT_LEASE_MS = 60 * 60 * 1000;

/**
 * Pulls an image into containerd the way containerd's own unpacker does, but with the labels a
 * remote snapshotter needs on every Prepare: manifest and config go into the content store (with gc
 * labels), each layer's snapshot is prepared with the target chain ID and the CRI labels; a
 * snapshotter that mounts the layer remotely answers ALREADY_EXISTS, any other layer is downloaded
 * and applied here. Finally the image record is created or updated. Everything runs under a lease
 * that is deleted at the end, so a failed pull leaves only what gc may collect.
 */
export async function pullImage(options: PullImageOptions): Promise<PullReport> {
  const { signal } = options;
  try {
    signal?.throwIfAborted();
    return await pull(options);
  } catch (err) {
    // Whatever step the abort interrupted (a registry read, a containerd call), the pull was aborted.
    if (signal?.aborted) {
      throw new PullError('PULL_ABORTED', `pull of ${options.ref} was aborted`, { cause: signal.reason });
    }
    throw err;
  }
}

async function pull(options: PullImageOptions): Promise<PullReport> {
  const started = performance.now();
  const reference = parseRef(options.ref);
  const name = formatReference(reference);
  const platform = resolvePlatform(options.platform);
  const unpackFallback = options.unpackFallback ?? true;
  const { signal } = options;
  let bytesFetched = 0;

  const resolved = await resolveManifest(options.source, reference, name, platform, signal);
  bytesFetched += resolved.fetched;
  const { manifestDesc, manifest } = resolved;
  const configBytes = await fetchVerified(options.source, manifest.config, 'config', signal);
  bytesFetched += configBytes.byteLength;
  const diffIds = parseDiffIds(configBytes, manifest.config, manifest.layers.length);
  const chains = chainIds(diffIds);
  const resolveMs = performance.now() - started;

  const source = distributionSourceLabel(reference.registry, reference.repository);
  // Without the signal: a lease created by a cancelled call would be unknown here, so not deleted.
  const base = options.client.withSignal(undefined);
  signal?.throwIfAborted();
  const lease = await pullStep('create lease', () =>
    base.leases.create({
      expiresInMs: options.leaseExpiresInMs ?? DEFAULT_LEASE_MS,
      labels: { 'soci-ts/pull': name },
    }),
  );
  const leased = base.withLease(lease.id);
  const client = leased.withSignal(signal);
  try {
    await pullStep('store config', () =>
      client.content.writeBlob({
        ref: refKey('config', manifest.config),
        expected: manifest.config,
        data: configBytes,
        labels: source,
      }),
    );
    await pullStep('store manifest', () =>
      client.content.writeBlob({
        ref: refKey('manifest', manifestDesc),
        expected: manifestDesc,
        data: resolved.manifestBytes,
        labels: { ...source, ...manifestGcLabels(manifest.config, manifest.layers) },
      }),
    );

    const snapshots = client.snapshots(options.snapshotter);
    const layers: LayerReport[] = [];
    for (const [index, layer] of manifest.layers.entries()) {
      signal?.throwIfAborted();
      const report = await pullLayer({
        client,
        snapshots,
        signal,
        imageName: name,
        source: options.source,
        manifestDesc,
        layers: manifest.layers,
        index,
        diffId: diffIds[index]!,
        chainId: chains[index]!,
        parent: chains[index - 1] ?? '',
        extraLabels: options.labels?.(layer, index) ?? {},
        unpackFallback,
        sourceLabels: source,
        leaseId: lease.id,
      });
      bytesFetched += report.bytesFetched;
      layers.push(report);
    }

    const top = chains[chains.length - 1] ?? '';
    if (top) {
      await pullStep('label config', () =>
        client.content.updateLabels(manifest.config.digest, configSnapshotGcLabel(options.snapshotter, top)),
      );
    }
    signal?.throwIfAborted();
    // Not cancelled once started: the image record is written whole or not at all.
    await pullStep('record image', () =>
      upsertImage(leased, { name, target: manifestDesc, labels: options.imageLabels ?? {} }),
    );
    return {
      name,
      manifest: manifestDesc,
      config: manifest.config,
      snapshotter: options.snapshotter,
      chainId: top,
      layers,
      bytesFetched,
      durationMs: performance.now() - started,
      resolveMs,
    };
  } finally {
    await base.leases.delete(lease.id).catch(() => undefined);
  }
}

interface ResolvedManifest {
  manifestDesc: Descriptor;
  manifestBytes: Uint8Array;
  manifest: { config: Descriptor; layers: Descriptor[] };
  /** Bytes of manifests (and index) downloaded. */
  fetched: number;
}

/** The platform's image manifest (through an index if the reference names one), checked for what we unpack. */
async function resolveManifest(
  source: PullSource,
  reference: Reference,
  name: string,
  platform: Platform,
  signal: AbortSignal | undefined,
): Promise<ResolvedManifest> {
  const fetchedManifest = await pullStep(`resolve ${name}`, () =>
    source.fetchImageManifest(reference.digest ?? reference.tag ?? 'latest', platform, { signal }),
  );
  const { descriptor, bytes, index } = fetchedManifest;
  const manifest = fetchedManifest.manifest as { config?: Descriptor; layers?: Descriptor[] };
  if (!isManifestType(descriptor.mediaType)) {
    throw new PullError(
      'PULL_UNSUPPORTED_MEDIA_TYPE',
      `${name} is a ${descriptor.mediaType}, not an image manifest or index`,
    );
  }
  if (!manifest.config?.digest || !Array.isArray(manifest.layers)) {
    throw new PullError(
      'PULL_INVALID_MANIFEST',
      `manifest ${descriptor.digest} of ${name} has no config or layers`,
    );
  }
  const bad = manifest.layers.find((l) => !isLayerMediaType(l.mediaType));
  if (bad) {
    throw new PullError(
      'PULL_UNSUPPORTED_MEDIA_TYPE',
      `manifest ${descriptor.digest} has a layer of type ${bad.mediaType}`,
    );
  }
  return {
    manifestDesc: plainDescriptor(descriptor),
    manifestBytes: bytes,
    manifest: { config: plainDescriptor(manifest.config), layers: manifest.layers.map(plainDescriptor) },
    fetched: bytes.byteLength + (index?.bytes.byteLength ?? 0),
  };
}

async function fetchVerified(
  source: PullSource,
  desc: Descriptor,
  what: string,
  signal: AbortSignal | undefined,
): Promise<Buffer> {
  // fetchBlob fails the stream on a digest or size mismatch, so what arrives complete is the blob.
  return pullStep(`fetch ${what} ${desc.digest}`, async () => {
    const parts: Buffer[] = [];
    for await (const part of await source.fetchBlob(desc, { signal })) parts.push(part as Buffer);
    return Buffer.concat(parts);
  });
}

function parseDiffIds(bytes: Uint8Array, config: Descriptor, layerCount: number): string[] {
  const parsed = parseJson<{ rootfs?: { diff_ids?: unknown } }>(bytes, `config ${config.digest}`);
  const diffIds = parsed.rootfs?.diff_ids;
  if (
    !Array.isArray(diffIds) ||
    !diffIds.every((d) => typeof d === 'string' && /^sha(256|512):[a-f0-9]+$/.test(d))
  ) {
    throw new PullError('PULL_INVALID_CONFIG', `config ${config.digest} has no valid rootfs.diff_ids`);
  }
  if (diffIds.length !== layerCount) {
    throw new PullError(
      'PULL_INVALID_CONFIG',
      `config ${config.digest} lists ${diffIds.length} diff IDs for ${layerCount} layers`,
    );
  }
  return diffIds as string[];
}

async function upsertImage(
  client: ContainerdClient,
  image: { name: string; target: Descriptor; labels: Labels },
) {
  for (;;) {
    try {
      return await client.images.create(image);
    } catch (err) {
      if (!isAlreadyExists(err)) throw err;
    }
    try {
      return await client.images.update(image);
    } catch (err) {
      if (!isNotFound(err)) throw err; // deleted between create and update: create again
    }
  }
}

function parseRef(ref: string): Reference {
  try {
    return parseReference(ref);
  } catch (err) {
    throw new PullError('PULL_INVALID_REFERENCE', (err as Error).message, { cause: err });
  }
}

function resolvePlatform(platform: string | Platform | undefined): Platform {
  if (platform === undefined) return hostPlatform();
  if (typeof platform !== 'string') return platform;
  try {
    return parsePlatform(platform);
  } catch (err) {
    throw new PullError('PULL_PLATFORM_NOT_FOUND', (err as Error).message, { cause: err });
  }
}

function plainDescriptor(d: Descriptor): Descriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: Number(d.size) };
}

function parseJson<T>(bytes: Uint8Array, what: string): T {
  try {
    return JSON.parse(Buffer.from(bytes).toString('utf8')) as T;
  } catch (err) {
    throw new PullError(
      what.startsWith('config') ? 'PULL_INVALID_CONFIG' : 'PULL_INVALID_MANIFEST',
      `${what} is not JSON`,
      { cause: err },
    );
  }
}
