import { buildIndexManifest, type DiscoveryRepository } from '@soci-ts/soci-index';
import { describe, expect, it } from 'vitest';
import { ImageIndexCache } from '../src/soci/image-index-cache.js';

const IMAGE = `sha256:${'1'.repeat(64)}`;
const index = buildIndexManifest({
  version: 'v1',
  buildToolIdentifier: 'test',
  disableXattrs: true,
  ztocs: [],
  prefetches: [],
  // A v1 index names the image it indexes; one without (or with another) is refused.
  subject: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest: IMAGE, size: 1 },
});

/** A registry whose image gets a v1 SOCI index once `push()` is called; counts discovery calls. */
function fakeRepository() {
  let pushed = false;
  const repo = {
    registry: 'r.test',
    name: 'app',
    referrerCalls: 0,
    push: () => {
      pushed = true;
    },
    async fetchManifest(digest: string) {
      if (digest === IMAGE) {
        const manifest = { schemaVersion: 2, layers: [] };
        const bytes = new TextEncoder().encode(JSON.stringify(manifest));
        return {
          manifest,
          bytes,
          descriptor: { mediaType: 'application/vnd.oci.image.manifest.v1+json', digest, size: bytes.length },
        };
      }
      return {
        manifest: JSON.parse(new TextDecoder().decode(index.bytes)),
        bytes: index.bytes,
        descriptor: index.descriptor,
      };
    },
    async referrers() {
      repo.referrerCalls++;
      return pushed ? [index.descriptor] : [];
    },
  };
  return repo;
}

const modes = { sociV2: true, sociV1Referrers: true, referrersTagFallback: true };

describe('ImageIndexCache', () => {
  it('asks once per image, and asks again about an image without an index after a while', async () => {
    const repo = fakeRepository();
    const cache = new ImageIndexCache(modes, 50);
    const cast = repo as unknown as DiscoveryRepository & { registry: string; name: string };
    expect((await cache.image(cast, IMAGE)).soci).toBeUndefined();
    repo.push();
    // Still believed for a while: every layer of one pull asks, the registry is asked once.
    expect((await cache.image(cast, IMAGE)).soci).toBeUndefined();
    expect(repo.referrerCalls).toBe(1);
    await new Promise((r) => setTimeout(r, 80));
    const found = await cache.image(cast, IMAGE);
    expect(found.soci?.descriptor.digest).toBe(index.descriptor.digest);
    expect(repo.referrerCalls).toBe(2);
    // A found index is kept.
    await new Promise((r) => setTimeout(r, 80));
    await cache.image(cast, IMAGE);
    expect(repo.referrerCalls).toBe(2);
  });
});
