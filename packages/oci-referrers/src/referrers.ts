import { assertDigest } from './digest.js';
import { RegistryError } from './errors.js';
import { discardBody, header, readLimited } from './http-response.js';
import {
  MAX_MANIFEST_BYTES,
  nextLink,
  type ReadOptions,
  type RepositoryEndpoint,
  type WriteOptions,
} from './repository-endpoint.js';
import { type Descriptor, type ImageIndex, isImageIndex, type Manifest, MediaType } from './types.js';

export interface ReferrersOptions extends ReadOptions {
  /** Only referrers of this artifact type. */
  artifactType?: string;
  /** On registries without the referrers API, read the `sha256-<hex>` tag index (default true). */
  tagFallback?: boolean;
}

/** What the tag fallback needs of its repository: reading and pushing the `sha256-<hex>` index. */
export interface ManifestAccess {
  fetchManifest(reference: string, options?: ReadOptions): Promise<{ manifest: Manifest }>;
  pushManifest(
    manifest: Manifest,
    options: { tag: string; mediaType: string } & WriteOptions,
  ): Promise<Descriptor>;
}

/** Fallback tag of the referrers tag schema: `sha256:<hex>` -> `sha256-<hex>` (at most 128 characters). */
export function referrersTag(subjectDigest: string): string {
  return subjectDigest.replace(':', '-').slice(0, 128);
}

/** The descriptor that lists a manifest as a referrer (artifactType: its own, else its config's). */
export function referrerDescriptor(manifest: Manifest, descriptor: Descriptor): Descriptor {
  const artifactType =
    manifest.artifactType ?? (isImageIndex(manifest) ? undefined : manifest.config?.mediaType);
  return {
    mediaType: descriptor.mediaType,
    digest: descriptor.digest,
    size: descriptor.size,
    ...(artifactType ? { artifactType } : {}),
    ...(manifest.annotations ? { annotations: manifest.annotations } : {}),
  };
}

/** The referrers of one repository's manifests: the referrers API, and the tag schema where it is missing. */
export class Referrers {
  constructor(
    private readonly endpoint: RepositoryEndpoint,
    private readonly manifests: ManifestAccess,
  ) {}

  /** The referrers API, its pages followed, else the tag schema: see Repository.referrers. */
  async list(subjectDigest: string, options: ReferrersOptions = {}): Promise<Descriptor[]> {
    assertDigest(subjectDigest);
    const what = this.endpoint.describe('referrers of', subjectDigest);
    const query = options.artifactType ? `?artifactType=${encodeURIComponent(options.artifactType)}` : '';
    let path: string | undefined = `/v2/${this.endpoint.name}/referrers/${subjectDigest}${query}`;
    const found: Descriptor[] = [];
    let filtered = true;
    for (let page = 0; path && page < 100; page++) {
      const pagePath: string = path;
      const answer = await this.endpoint.transport.read(what, options.signal, async (signal) => {
        const res = await this.endpoint.send({
          method: 'GET',
          path: pagePath,
          headers: { accept: MediaType.OciIndex },
          ok: [200, 404],
          what,
          signal,
        });
        if (res.status === 404) {
          await discardBody(res);
          return undefined;
        }
        const text = (await readLimited(res.body, MAX_MANIFEST_BYTES)).toString('utf8');
        return { res, text };
      });
      if (!answer) {
        if (page > 0) throw new RegistryError('REGISTRY_PROTOCOL', `${what}: a referrers page link gave 404`);
        if (options.tagFallback === false) return [];
        const index = await this.fetchFallbackIndex(subjectDigest, options);
        return filterByArtifactType(index.manifests, options.artifactType);
      }
      const { res, text } = answer;
      let index: ImageIndex;
      try {
        index = JSON.parse(text) as ImageIndex;
      } catch {
        throw new RegistryError('REGISTRY_PROTOCOL', `${what}: the referrers answer is not JSON`);
      }
      if (!Array.isArray(index.manifests))
        throw new RegistryError('REGISTRY_PROTOCOL', `${what}: the referrers answer is not an index`);
      found.push(...index.manifests);
      const applied = (header(res, 'oci-filters-applied') ?? '').split(',').map((s) => s.trim());
      if (!applied.includes('artifactType')) filtered = false;
      path = nextLink(header(res, 'link'), res.url);
    }
    return filtered ? found : filterByArtifactType(found, options.artifactType);
  }

  /** Read-modify-write of the `sha256-<hex>` fallback index: adds `referrer` unless already listed. */
  async addToFallback(
    subjectDigest: string,
    referrer: Descriptor,
    options: WriteOptions = {},
  ): Promise<void> {
    const current = await this.fetchFallbackIndex(subjectDigest, options);
    if (current.manifests.some((d) => d.digest === referrer.digest)) return;
    const next: ImageIndex = { ...current, manifests: [...current.manifests, referrer] };
    await this.manifests.pushManifest(next, {
      tag: referrersTag(subjectDigest),
      mediaType: MediaType.OciIndex,
      signal: options.signal,
    });
  }

  private async fetchFallbackIndex(subjectDigest: string, options: ReadOptions): Promise<ImageIndex> {
    try {
      const { manifest } = await this.manifests.fetchManifest(referrersTag(subjectDigest), {
        signal: options.signal,
      });
      if (!isImageIndex(manifest)) {
        throw new RegistryError(
          'REGISTRY_INVALID_MANIFEST',
          `${this.endpoint.describe('referrers tag', referrersTag(subjectDigest))} is not an image index; delete that tag`,
        );
      }
      return manifest;
    } catch (error) {
      // No fallback index yet: the registry says the tag (or the repository) is unknown, or just 404.
      const missing =
        error instanceof RegistryError &&
        (error.code === 'REGISTRY_MANIFEST_UNKNOWN' ||
          error.code === 'REGISTRY_NAME_UNKNOWN' ||
          error.status === 404);
      if (missing) return { schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] };
      throw error;
    }
  }
}

function filterByArtifactType(descriptors: Descriptor[], artifactType: string | undefined): Descriptor[] {
  return artifactType ? descriptors.filter((d) => d.artifactType === artifactType) : descriptors;
}
