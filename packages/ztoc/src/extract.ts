import { ZtocError } from './errors.js';
import { layerSpans } from './layer-spans.js';
import type { Ztoc } from './model.js';
import { findFile, spansForRange } from './queries.js';
import { sha256Digest } from './sha256.js';

/** Reads compressed layer bytes [start, end) (end exclusive), e.g. with one HTTP range request. */
export type FetchRange = (start: number, end: number) => Promise<Uint8Array>;

export interface ExtractOptions {
  /** Check each fetched span against its digest in the zTOC (default true). */
  verify?: boolean;
}

/** Longest hardlink chain followed before giving up (a loop would never end). */
const MAX_LINK_HOPS = 64;

/**
 * Reads uncompressed bytes [offset, offset + length) of the layer's tar stream: fetches only the
 * spans that hold them (one contiguous range), verifies their digests and decodes them.
 */
export async function extractRange(
  ztoc: Ztoc,
  offset: number,
  length: number,
  fetchRange: FetchRange,
  o: ExtractOptions = {},
): Promise<Uint8Array> {
  const plan = spansForRange(ztoc, offset, length);
  const out = new Uint8Array(length);
  if (plan.spanIds.length === 0) return out;
  const { start, end } = plan.compressed;
  const compressed = await fetchRange(start, end);
  if (compressed.length !== end - start) {
    throw new ZtocError(
      'ZTOC_OUT_OF_RANGE',
      `fetching layer bytes [${start}, ${end}) returned ${compressed.length} bytes, not ${end - start}`,
    );
  }
  const spans = layerSpans(ztoc);
  for (const id of plan.spanIds) {
    const range = spans.compressedRange(id);
    const bytes = compressed.subarray(range.start - start, range.end - start);
    if (o.verify ?? true) {
      const expected = spans.digest(id);
      const actual = await sha256Digest(bytes);
      if (actual !== expected) {
        throw new ZtocError(
          'ZTOC_DIGEST_MISMATCH',
          `span ${id} has digest ${actual}, the zTOC says ${expected}: the layer or zTOC is wrong`,
        );
      }
    }
    // Only the part of the span inside the range is inflated (decoding stops at its end).
    const tar = spans.uncompressedRange(id);
    const from = Math.max(offset, tar.start);
    const to = Math.min(offset + length, tar.end);
    out.set(await spans.decode(id, bytes, { offset: from - tar.start, length: to - from }), from - offset);
  }
  return out;
}

/**
 * The content of a regular file (hardlinks are followed), fetching only the spans that hold it.
 * Throws ZTOC_NOT_FOUND for a missing path and ZTOC_INVALID_ARGUMENT for an entry that has no content.
 */
export async function extractFileBytes(
  ztoc: Ztoc,
  path: string,
  fetchRange: FetchRange,
  o: ExtractOptions = {},
): Promise<Uint8Array> {
  let file = findFile(ztoc, path);
  for (let hops = 0; file.type === 'hardlink'; hops++) {
    if (hops === MAX_LINK_HOPS)
      throw new ZtocError('ZTOC_INVALID', `hardlink chain from "${path}" does not end`);
    file = findFile(ztoc, file.linkname);
  }
  if (file.type !== 'reg') {
    throw new ZtocError(
      'ZTOC_INVALID_ARGUMENT',
      `"${path}" is a ${file.type}, not a regular file: it has no content`,
    );
  }
  return extractRange(ztoc, file.uncompressedOffset, file.uncompressedSize, fetchRange, o);
}
