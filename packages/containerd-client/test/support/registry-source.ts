import type { Descriptor, ImageSource } from '../../src/index.js';

const ACCEPT = [
  'application/vnd.oci.image.index.v1+json',
  'application/vnd.oci.image.manifest.v1+json',
  'application/vnd.docker.distribution.manifest.list.v2+json',
  'application/vnd.docker.distribution.manifest.v2+json',
].join(', ');

/** Error shaped like the registry client's: a stable `code` the pull maps to its own codes. */
class SourceError extends Error {
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * A plain-HTTP, anonymous ImageSource over the distribution API for tests (until the pull is wired to
 * @soci-ts/oci-referrers' repository client).
 */
export function httpImageSource(
  registryUrl: string,
  repository: string,
): ImageSource & { requests: string[] } {
  const requests: string[] = [];
  const get = async (path: string, accept?: string) => {
    requests.push(path);
    let res: Response;
    try {
      res = await fetch(`${registryUrl}/v2/${repository}/${path}`, { headers: accept ? { accept } : {} });
    } catch (err) {
      throw new SourceError('NETWORK', `${path}: ${(err as Error).message}`);
    }
    if (res.status === 404)
      throw new SourceError(
        path.startsWith('manifests') ? 'MANIFEST_UNKNOWN' : 'BLOB_UNKNOWN',
        `${path}: 404`,
      );
    if (!res.ok) throw new SourceError('HTTP_ERROR', `${path}: HTTP ${res.status}`);
    return res;
  };
  return {
    requests,
    async fetchManifest(reference: string) {
      const res = await get(`manifests/${reference}`, ACCEPT);
      return {
        mediaType: res.headers.get('content-type') ?? '',
        bytes: new Uint8Array(await res.arrayBuffer()),
      };
    },
    async fetchBlob(descriptor: Descriptor) {
      const res = await get(`blobs/${descriptor.digest}`);
      if (!res.body) throw new SourceError('HTTP_ERROR', 'blob response without body');
      return res.body as AsyncIterable<Uint8Array>;
    },
  };
}
