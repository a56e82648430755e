import type { Hasher } from '@soci-ts/seekable-gzip';

/**
 * Incremental sha256 hasher factory from node:crypto. Loaded on demand so that importing
 * this package in a browser does not pull node:crypto; pass your own factory there.
 */
export async function nodeSha256(): Promise<() => Hasher> {
  const { createHash } = await import('node:crypto');
  return () => {
    const h = createHash('sha256');
    return {
      update: (data) => {
        h.update(data);
      },
      digest: () => `sha256:${h.digest('hex')}`,
    };
  };
}

/** One-shot sha256 (`sha256:<hex>`) with WebCrypto, available in Node >= 20 and browsers. */
export async function sha256Digest(data: Uint8Array): Promise<string> {
  const hash = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', data));
  let hex = '';
  for (const b of hash) hex += b.toString(16).padStart(2, '0');
  return `sha256:${hex}`;
}
