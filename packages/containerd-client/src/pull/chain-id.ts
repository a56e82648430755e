import { createHash } from 'node:crypto';

/**
 * Chain IDs of a layer stack (OCI image spec, "Layer ChainID"): the first is the first diff ID;
 * each next one is `sha256(<previous chain ID> + " " + <diff ID>)`. Snapshots are named by them.
 */
export function chainIds(diffIds: readonly string[]): string[] {
  const out: string[] = [];
  for (const diffId of diffIds) {
    const previous = out[out.length - 1];
    out.push(
      previous === undefined
        ? diffId
        : `sha256:${createHash('sha256').update(`${previous} ${diffId}`).digest('hex')}`,
    );
  }
  return out;
}
