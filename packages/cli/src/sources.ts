/** Image sources by reference: `oci:<dir>[:<tag>]`, `oci-archive:<file>[:<tag>]`, or a registry reference. */

import { formatReference, parseReference } from '@soci-ts/oci-referrers';
import { ArchiveSource, type ImageSource, LayoutSource } from '@soci-ts/soci-index';
import type { Context } from './context.js';
import { openRegistrySource } from './registry.js';

/** Splits `<path>[:<tag>]`; a colon before the last `/` belongs to the path. */
function splitPathTag(text: string): [string, string | undefined] {
  const colon = text.lastIndexOf(':');
  if (colon > text.lastIndexOf('/')) return [text.slice(0, colon), text.slice(colon + 1) || undefined];
  return [text, undefined];
}

export function isLocalReference(ref: string): boolean {
  return ref.startsWith('oci:') || ref.startsWith('oci-archive:');
}

export async function openSource(ctx: Context, ref: string): Promise<ImageSource> {
  if (ref.startsWith('oci:')) return new LayoutSource(...splitPathTag(ref.slice('oci:'.length)));
  if (ref.startsWith('oci-archive:'))
    return new ArchiveSource(...splitPathTag(ref.slice('oci-archive:'.length)));
  if (ctx.options.containerdAddress) {
    const name = formatReference(parseReference(ref));
    // Loaded on demand: containerd's gRPC client is only needed with --containerd-address.
    const { openContainerdSource } = await import('./containerd-source.js');
    return openContainerdSource(ctx.options.containerdAddress, ctx.options.namespace, name, (fn) =>
      ctx.onClose(fn),
    );
  }
  return openRegistrySource(ctx, ref);
}
