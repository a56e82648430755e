import { type BuiltImage, buildImage, type TestLayer } from './images.js';

export const BUSYBOX = '/bin/busybox';

/** One layer: path -> content; `{ busybox: true }` is the host's static busybox with mode 0755. */
export type LayerSpec = Record<string, string | Uint8Array | { busybox: true }>;

/** A runnable image made by umoci: layer 0 has the static busybox, the others plain files. */
export function buildBusyboxImage(layers: LayerSpec[], tag = 'latest'): Promise<BuiltImage> {
  const withBusybox = layers.map(
    (files): TestLayer =>
      Object.fromEntries(
        Object.entries(files).map(([path, content]) => [
          path,
          typeof content === 'object' && 'busybox' in content ? { copyFrom: BUSYBOX, mode: 0o755 } : content,
        ]),
      ),
  );
  return buildImage({ layers: withBusybox, tag });
}
