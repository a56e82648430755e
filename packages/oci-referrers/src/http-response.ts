// A registry's response as the transport hands it over, and how its headers and body are read.
import type { Dispatcher } from 'undici';

export interface HttpResponse {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: Dispatcher.ResponseData['body'];
  /** Final URL, after redirects. */
  url: URL;
}

export function header(res: { headers: HttpResponse['headers'] }, name: string): string | undefined {
  const v = res.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

/** Every value of a header that may repeat (`WWW-Authenticate`): undici gives an array for repeats. */
export function headerValues(res: { headers: HttpResponse['headers'] }, name: string): string[] {
  const v = res.headers[name];
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

/**
 * Stops reading a body and frees its connection. undici emits an AbortError on a body destroyed without a
 * listener; that is expected here, so it is swallowed.
 */
export function abandon(body: {
  on(event: 'error', listener: () => void): unknown;
  destroy(): unknown;
}): void {
  body.on('error', () => undefined);
  body.destroy();
}

/**
 * Reads the rest of a body and drops it, so that its connection can be reused. A body longer than `limit`
 * (undici's default: 128 KiB) closes the connection instead.
 */
export async function discardBody(res: { body: HttpResponse['body'] }, limit?: number): Promise<void> {
  try {
    await res.body.dump(limit === undefined ? undefined : { limit });
  } catch {
    // The connection is dropped instead of reused; nothing else to do.
  }
}

/** A body the transport skips (a retried 5xx or 429, an answered 401, a redirect): read this much at most. */
export const SKIPPED_BODY_LIMIT = 64 * 1024;

/** Reads at most `limit` bytes of a body, then drops the rest. */
export async function readLimited(body: HttpResponse['body'], limit: number): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of body as AsyncIterable<Buffer>) {
    const room = limit - total;
    chunks.push(chunk.length > room ? chunk.subarray(0, room) : chunk);
    total += Math.min(chunk.length, room);
    if (total >= limit) {
      abandon(body);
      break;
    }
  }
  return Buffer.concat(chunks);
}
