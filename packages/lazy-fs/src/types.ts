/**
 * Reads byte ranges of one blob. Structurally the same as `BlobRangeReader` of
 * @soci-ts/oci-referrers, so a registry blob reader can be passed in directly.
 */
export interface BlobRangeReader {
  /** Blob size when known. */
  size?: number;
  /**
   * Bytes `[start, end)` of the blob. May return fewer bytes on a broken transfer; callers check.
   * `signal` aborts the request (the span's fetch deadline passed).
   */
  readRange(start: number, end: number, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

/** The layer a zTOC describes. */
export interface LayerDescriptor {
  /** `sha256:<hex>` of the compressed layer blob. */
  digest: string;
  /** Compressed size in bytes. */
  size: number;
}

/** Why a span is fetched; foreground reads always go first. */
export type FetchPriority = 'foreground' | 'prefetch' | 'background';
