import { type BuildZtocOptions, buildZtoc, encodeZtoc, type Ztoc } from '@soci-ts/ztoc';

/** A zTOC built from a layer stream: its encoding, and the model when the builder has it at hand. */
export interface BuiltZtoc {
  bytes: Uint8Array;
  ztoc?: Ztoc;
}

/**
 * Turns one layer stream into an encoded zTOC. The default runs in this thread; the CLI
 * passes a worker-thread pool (worker-pool.ts) so layers decode on all cores.
 */
export type ZtocBuilder = (
  chunks: AsyncIterable<Uint8Array>,
  options: BuildZtocOptions,
) => Promise<BuiltZtoc>;

export const inThreadZtocBuilder: ZtocBuilder = async (chunks, options) => {
  const ztoc = await buildZtoc(chunks, options);
  return { bytes: encodeZtoc(ztoc), ztoc };
};
