import type { Descriptor, Labels } from '../types.js';

/** Labels containerd and remote snapshotters agree on (containerd 1.6 pkg/snapshotters, unpacker.go, gc). */
export const LABEL = {
  /** On Prepare: the chain ID the snapshot will be committed as; a remote snapshotter commits it itself. */
  snapshotRef: 'containerd.io/snapshot.ref',
  imageRef: 'containerd.io/snapshot/cri.image-ref',
  manifestDigest: 'containerd.io/snapshot/cri.manifest-digest',
  layerDigest: 'containerd.io/snapshot/cri.layer-digest',
  imageLayers: 'containerd.io/snapshot/cri.image-layers',
  /** On a committed snapshot: a remote snapshotter mounted the layer (stargz, soci and ours set it). */
  remote: 'containerd.io/snapshot/remote',
  /** On Prepare: the SOCI index to use for the image, instead of discovering one. */
  sociIndexDigest: 'containerd.io/snapshot/remote/soci.index.digest',
  /** On a layer blob after unpacking: its diff ID. */
  uncompressed: 'containerd.io/uncompressed',
  gcConfig: 'containerd.io/gc.ref.content.config',
  gcLayerPrefix: 'containerd.io/gc.ref.content.l.',
  gcSnapshotPrefix: 'containerd.io/gc.ref.snapshot.',
  distributionSourcePrefix: 'containerd.io/distribution.source.',
} as const;

/** Only `containerd.io/snapshot.ref` and `containerd.io/snapshot/*` labels reach a proxy snapshotter. */
export function isInheritedSnapshotLabel(key: string): boolean {
  return key === LABEL.snapshotRef || key.startsWith('containerd.io/snapshot/');
}

/** containerd rejects a label whose key and value together exceed 4096 bytes (labels.Validate). */
export const MAX_LABEL_BYTES = 4096;

export function labelFits(key: string, value: string): boolean {
  return Buffer.byteLength(key) + Buffer.byteLength(value) <= MAX_LABEL_BYTES;
}

/**
 * `cri.image-layers` for layer `index`: the digests of this layer and every following one,
 * comma-separated, cut before the first digest that would overflow the label size limit
 * (as the CRI plugin's AppendInfoHandlerWrapper/getLayers does).
 */
export function imageLayersLabel(layers: readonly Descriptor[], index: number): string {
  let value = '';
  for (const layer of layers.slice(index)) {
    const next = value === '' ? layer.digest : `${value},${layer.digest}`;
    if (!labelFits(LABEL.imageLayers, next)) break;
    value = next;
  }
  return value;
}

export interface LayerLabelContext {
  /** The image reference as the user named it (normalized). */
  imageRef: string;
  manifestDigest: string;
  layers: readonly Descriptor[];
  index: number;
  chainId: string;
}

/**
 * Labels for the Prepare of one layer's snapshot: the target chain ID plus the CRI labels a remote
 * snapshotter needs to find the layer in the registry, then caller extras (which may override).
 * Extras that a proxy snapshotter would never see are rejected, so a typo is caught here.
 */
export function snapshotLabels(ctx: LayerLabelContext, extra: Labels = {}): Labels {
  const layer = ctx.layers[ctx.index];
  if (!layer) throw new RangeError(`layer ${ctx.index} out of range (${ctx.layers.length} layers)`);
  const labels: Labels = {
    [LABEL.snapshotRef]: ctx.chainId,
    [LABEL.imageRef]: ctx.imageRef,
    [LABEL.manifestDigest]: ctx.manifestDigest,
    [LABEL.layerDigest]: layer.digest,
    [LABEL.imageLayers]: imageLayersLabel(ctx.layers, ctx.index),
  };
  for (const [key, value] of Object.entries(extra)) {
    if (!isInheritedSnapshotLabel(key)) {
      throw new TypeError(
        `snapshot label ${key} would not reach the snapshotter: use a containerd.io/snapshot/ key`,
      );
    }
    if (!labelFits(key, value)) throw new TypeError(`snapshot label ${key} is over ${MAX_LABEL_BYTES} bytes`);
    labels[key] = value;
  }
  return labels;
}

/**
 * GC references a manifest blob carries so its config and layers live as long as it does
 * (images.ChildGCLabels: `config` for the config, `l.<n>` numbering the layers from 0).
 */
export function manifestGcLabels(config: Descriptor, layers: readonly Descriptor[]): Labels {
  const labels: Labels = { [LABEL.gcConfig]: config.digest };
  layers.forEach((layer, i) => {
    labels[`${LABEL.gcLayerPrefix}${i}`] = layer.digest;
  });
  return labels;
}

/** GC reference from the config blob to the top snapshot of the unpacked image (containerd's unpacker). */
export function configSnapshotGcLabel(snapshotter: string, topChainId: string): Labels {
  return { [`${LABEL.gcSnapshotPrefix}${snapshotter}`]: topChainId };
}

/** `containerd.io/distribution.source.<registry host>` = repository, as containerd records where a blob came from. */
export function distributionSourceLabel(registry: string, repository: string): Labels {
  const key = `${LABEL.distributionSourcePrefix}${registry}`;
  return labelFits(key, repository) ? { [key]: repository } : {};
}
