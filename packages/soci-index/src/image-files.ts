/**
 * Reading files of an image through its SOCI index, without pulling it: indexed layers
 * are read span by span with range requests; layers without a zTOC (below the minimum
 * size) are fetched whole and indexed in memory, as a lazy-loading snapshotter would.
 */
import { buildZtoc, decodeZtoc, extractFileBytes, type FetchRange, type Ztoc } from '@soci-ts/ztoc';
import { type AbortOptions, abortable, abortableChunks } from './abort.js';
import { SociIndexError } from './errors.js';
import { collect, type PlatformImage } from './image.js';
import { type SociIndex, ztocForLayer } from './index-manifest.js';
import { layerCompression } from './layer-kind.js';
import { type MergedEntry, MergedView } from './merged-view.js';
import type { ImageSource } from './source.js';

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

interface LayerAccess {
  ztoc: Ztoc;
  fetchRange: (options: AbortOptions) => FetchRange;
}

export class ImageFiles {
  private constructor(
    private readonly layers: LayerAccess[],
    readonly view: MergedView,
  ) {}

  /**
   * @param readZtoc returns the verified bytes of a zTOC blob (local store or registry); it gets
   * the call's `signal`.
   */
  static open(
    source: ImageSource,
    image: PlatformImage,
    index: SociIndex,
    readZtoc: (digest: string, options: AbortOptions) => Promise<Uint8Array>,
    options: AbortOptions = {},
  ): Promise<ImageFiles> {
    const { signal } = options;
    const what = `opening the files of ${source.reference}`;
    return abortable(signal, what, async () => {
      const layers = await Promise.all(
        image.manifest.layers.map(async (layer): Promise<LayerAccess> => {
          const ref = ztocForLayer(index, layer.digest);
          if (ref) {
            return {
              ztoc: decodeZtoc(await readZtoc(ref.digest, { signal })),
              fetchRange: (o) => (start, end) => source.fetchBlobRange(layer, start, end, o),
            };
          }
          const blob = await collect(abortableChunks(source.fetchBlob(layer, { signal }), signal, what));
          const ztoc = await buildZtoc(once(blob), { compression: layerCompression(layer) });
          return { ztoc, fetchRange: () => async (start, end) => blob.subarray(start, end) };
        }),
      );
      return new ImageFiles(layers, new MergedView(layers.map((l) => l.ztoc.toc)));
    });
  }

  /** The merged entry a path names (symlinks followed). */
  stat(path: string): MergedEntry {
    return this.view.resolve(path);
  }

  /** The bytes of a regular file of the merged tree. */
  async readFile(path: string, options: AbortOptions = {}): Promise<Uint8Array> {
    const hit = this.view.resolve(path);
    if (hit.entry.type !== 'reg' && hit.entry.type !== 'hardlink') {
      throw new SociIndexError(
        'INDEX_NOT_FOUND',
        `${path} is a ${hit.entry.type === 'dir' ? 'directory' : hit.entry.type}, not a regular file`,
      );
    }
    const layer = this.layers[hit.layer]!;
    return abortable(options.signal, `reading ${path}`, () =>
      extractFileBytes(layer.ztoc, hit.path, layer.fetchRange(options)),
    );
  }
}
