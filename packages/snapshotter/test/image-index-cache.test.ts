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

/** A repository whose referrers call hangs until its signal aborts (or `release()`), recording the signals it got. */
function hangingRepository() {
  const base = fakeRepository();
  const signals: (AbortSignal | undefined)[] = [];
  let release: () => void = () => {};
  const released = new Promise<void>((r) => {
    release = r;
  });
  const repo = {
    ...base,
    fetchManifest: (digest: string, options?: { signal?: AbortSignal }) => {
      signals.push(options?.signal);
      return base.fetchManifest(digest);
    },
    referrers: (_digest: string, options?: { signal?: AbortSignal }) => {
      signals.push(options?.signal);
      const signal = options?.signal;
      return new Promise<never[]>((resolve, reject) => {
        signal?.addEventListener('abort', () => reject(signal.reason), { once: true });
        released.then(() => resolve([]));
      });
    },
  };
  return {
    repo: repo as unknown as DiscoveryRepository & { registry: string; name: string },
    signals,
    release,
  };
}

describe('ImageIndexCache cancellation', () => {
  it("a caller's signal stops its wait, not the discovery others share", async () => {
    const { repo, signals, release } = hangingRepository();
    const cache = new ImageIndexCache(modes, 50);
    const first = new AbortController();
    const waiting = cache.image(repo, IMAGE, undefined, first.signal);
    const other = cache.image(repo, IMAGE);
    await new Promise((r) => setTimeout(r, 20));
    first.abort(new Error('containerd gave up on this Prepare'));
    await expect(waiting).rejects.toThrow('containerd gave up on this Prepare');
    // The shared discovery was not given the caller's signal, and goes on for the other caller.
    expect(signals.every((s) => s !== first.signal)).toBe(true);
    release();
    expect((await other).soci).toBeUndefined();
  });

  it('the lifetime signal (daemon shutdown) stops the discovery in flight', async () => {
    const { repo, signals } = hangingRepository();
    const lifetime = new AbortController();
    const cache = new ImageIndexCache(modes, 50, undefined, lifetime.signal);
    const discovery = cache.image(repo, IMAGE);
    await new Promise((r) => setTimeout(r, 20));
    expect(signals.length).toBeGreaterThan(0);
    expect(signals.every((s) => s === lifetime.signal)).toBe(true);
    lifetime.abort(new Error('shutting down'));
    await expect(discovery).rejects.toMatchObject({ code: 'INDEX_ABORTED' });
  });
});
