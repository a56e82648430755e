import { randomBytes } from 'node:crypto';
import type { Descriptor } from '../types.js';

/** containerd's unpack key (snapshots.UnpackKeyFormat `extract-%s %s`): unique part, then the target chain ID. */
export function unpackKey(chainId: string): string {
  return `extract-${process.hrtime.bigint() % 1_000_000_000n}-${randomBytes(3).toString('base64url')} ${chainId}`;
}

/** Ingest reference like containerd's remotes.MakeRefKey: `<kind>-<digest>`. */
export function refKey(kind: 'manifest' | 'config' | 'layer', desc: Descriptor): string {
  return `${kind}-${desc.digest}`;
}
