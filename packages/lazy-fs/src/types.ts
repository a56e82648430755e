/** Reads byte ranges of one blob: a registry blob reader (or anything with `readRange`). */
export type { BlobRangeReader } from '@soci-ts/oci-referrers';

/** The layer a zTOC describes. */
export interface LayerDescriptor {
  /** `sha256:<hex>` of the compressed layer blob. */
  digest: string;
  /** Compressed size in bytes. */
  size: number;
}

/** Why a span is fetched; foreground reads always go first. */
export type FetchPriority = 'foreground' | 'prefetch' | 'background';
