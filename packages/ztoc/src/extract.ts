import { decodeSpan } from '@soci-ts/seekable-gzip';
import { ZtocError } from './errors.js';
import type { Ztoc } from './model.js';
import { findFile, spansForRange } from './queries.js';
import { sha256Digest } from './sha256.js';
import { spanLayout } from './span-layout.js';

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
  if (plan.spans.length === 0) return out;
  const compressed = await fetchRange(plan.compressedStart, plan.compressedEnd);
  const want = plan.compressedEnd - plan.compressedStart;
  if (compressed.length !== want) {
    throw new ZtocError(
      'ZTOC_OUT_OF_RANGE',
      `fetching layer bytes [${plan.compressedStart}, ${plan.compressedEnd}) returned ${compressed.length} bytes, not ${want}`,
    );
  }
  const layout = spanLayout(ztoc);
  for (const span of plan.spans) {
    const bytes = compressed.subarray(
      span.compressedStart - plan.compressedStart,
      span.compressedEnd - plan.compressedStart,
    );
    if (o.verify ?? true) {
      const expected = ztoc.compressionInfo.spanDigests[span.spanId];
      const actual = await sha256Digest(bytes);
      if (actual !== expected) {
        throw new ZtocError(
          'ZTOC_DIGEST_MISMATCH',
          `span ${span.spanId} has digest ${actual}, the zTOC says ${expected}: the layer or zTOC is wrong`,
        );
      }
    }
    // Only the part of the span inside the range is inflated (decoding stops at its end).
    const from = Math.max(offset, span.uncompressedStart);
    const to = Math.min(offset + length, span.uncompressedEnd);
    const part = { offset: from - span.uncompressedStart, length: to - from };
    const data = layout.gzipIndex
      ? await decodeSpan(layout.gzipIndex, span.spanId, bytes, part)
      : bytes.subarray(part.offset, part.offset + part.length);
    if (data.length !== part.length) {
      throw new ZtocError(
        'ZTOC_INVALID',
        `span ${span.spanId} decoded to ${data.length} bytes, expected ${part.length}`,
      );
    }
    out.set(data, from - offset);
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
