import { RegistryError } from './errors.js';
import { abandon, type HttpResponse } from './http-response.js';

/** The smallest interface a lazy reader needs: random reads of one remote blob. */
export interface BlobRangeReader {
  /** Blob size in bytes, when known. */
  size?: number;
  /** Bytes `[start, end)`, clamped at the blob's end like Uint8Array.slice. */
  readRange(start: number, end: number, options?: { signal?: AbortSignal }): Promise<Uint8Array>;
}

export function assertRange(start: number, end: number): void {
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(end) || start < 0 || end < start) {
    throw new RegistryError(
      'REGISTRY_RANGE_INVALID',
      `invalid byte range [${start}, ${end}): need 0 <= start <= end`,
    );
  }
}

/** Parses `bytes <first>-<last>/<total|*>`. */
export function parseContentRange(
  value: string | undefined,
): { first: number; last: number; total?: number } | undefined {
  const m = /^\s*bytes\s+(\d+)-(\d+)\/(\d+|\*)\s*$/i.exec(value ?? '');
  if (!m) return undefined;
  const first = Number(m[1]);
  const last = Number(m[2]);
  if (last < first) return undefined;
  return { first, last, ...(m[3] === '*' ? {} : { total: Number(m[3]) }) };
}

/** Reads exactly `length` bytes of a body (less only if `allowShort` and the body ends first). */
export async function readExactly(
  body: HttpResponse['body'],
  length: number,
  what: string,
): Promise<Uint8Array> {
  const out = new Uint8Array(length);
  let filled = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    if (filled + chunk.length > length) {
      abandon(body);
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `${what}: the registry sent more bytes than the range it announced`,
      );
    }
    out.set(chunk, filled);
    filled += chunk.length;
  }
  if (filled !== length) {
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `${what}: the body ended after ${filled} of ${length} bytes`,
    );
  }
  return out;
}

/**
 * Cuts `[start, end)` out of a full-blob body while it streams: bytes before `start` are dropped, the body is
 * destroyed once `end` is reached, so at most the wanted bytes are kept in memory.
 */
export async function sliceFullBody(
  body: HttpResponse['body'],
  start: number,
  end: number,
  contentLength: number | undefined,
  what: string,
): Promise<Uint8Array> {
  const stop = contentLength === undefined ? end : Math.min(end, contentLength);
  const out = new Uint8Array(Math.max(0, stop - start));
  let offset = 0;
  if (out.length === 0) {
    abandon(body);
    return out;
  }
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const chunkEnd = offset + chunk.length;
    if (chunkEnd > start && offset < stop) {
      const from = Math.max(start, offset);
      const to = Math.min(stop, chunkEnd);
      out.set(chunk.subarray(from - offset, to - offset), from - start);
    }
    offset = chunkEnd;
    if (offset >= stop) {
      abandon(body);
      return out;
    }
  }
  if (contentLength !== undefined && offset < contentLength) {
    throw new RegistryError(
      'REGISTRY_PROTOCOL',
      `${what}: the body ended after ${offset} of ${contentLength} bytes`,
    );
  }
  // No Content-Length and the blob is shorter than `end`: clamp like a 206 at the blob end would.
  return offset <= start ? new Uint8Array(0) : out.subarray(0, offset - start);
}
