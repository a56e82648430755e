// Cancellation against a real registry (docker-registry, behind a fault proxy that can hang a
// request): an aborted discovery or build ends at once with INDEX_ABORTED, the abort's reason on
// its cause chain, and sends no request after the abort.
import { randomBytes } from 'node:crypto';
import { findCause, hasCode } from '@soci-ts/errors';
import { parseReference, RegistryClient, type Repository } from '@soci-ts/oci-referrers';
import {
  type FaultProxy,
  pushImage,
  startFaultProxy,
  startRegistry,
  type TestRegistry,
} from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  buildSociIndex,
  fetchPrefetch,
  fetchZtoc,
  findSociIndex,
  loadImageRoot,
  type PlatformImage,
  pushSociIndex,
  RegistrySource,
  selectPlatformImage,
} from '../src/index.js';

/** Far below any registry timeout: an abort must not wait for one. */
const PROMPT_MS = 2_000;

let registry: TestRegistry;
let proxy: FaultProxy;
let client: RegistryClient;
let viaProxy: Repository;
let image: PlatformImage;

beforeAll(async () => {
  registry = await startRegistry();
  const pushed = await pushImage({
    host: registry.host,
    repository: 'app',
    tag: 'v1',
    layers: [{ 'data/blob': randomBytes(300_000) }],
  });
  await pushed.cleanup();
  client = new RegistryClient({ retry: { baseDelayMs: 1, maxDelayMs: 5 } });
  const ref = parseReference(`${registry.host}/app:v1`);
  const repo = client.repository(ref);
  const source = new RegistrySource(repo, ref);
  const root = await loadImageRoot(source);
  image = await selectPlatformImage(source, root, { os: 'linux', architecture: 'amd64' });
  const built = await buildSociIndex(source, image, { version: 'v1', minLayerSize: 0 });
  await pushSociIndex(repo, { manifestBytes: built.manifest.bytes, blobs: built.blobs });
  proxy = await startFaultProxy(registry);
  viaProxy = client.repository(`${proxy.host}/app`);
}, 60_000);

afterAll(async () => {
  await client?.close();
  await proxy?.stop();
  await registry?.stop();
});

/** The call's error and how long it took to come. */
async function failure(call: Promise<unknown>): Promise<{ err: unknown; ms: number }> {
  const start = performance.now();
  const err = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { err, ms: performance.now() - start };
}

function expectAborted(err: unknown, reason: unknown): void {
  expect(err).toMatchObject({ name: 'SociIndexError', code: 'INDEX_ABORTED' });
  expect(findCause(err, (e): e is unknown => e === reason)).toBe(reason);
}

describe('cancellation', () => {
  it('finds the index through the proxy when nothing aborts (the setup works)', async () => {
    const found = await findSociIndex(viaProxy, image.descriptor.digest, {
      signal: new AbortController().signal,
    });
    expect(found?.via).toBe('v1-referrers');
  });

  it('an aborted signal ends a discovery before it sends anything', async () => {
    const controller = new AbortController();
    const reason = new Error('the container start was cancelled');
    controller.abort(reason);
    const before = proxy.requests.length;
    const { err, ms } = await failure(
      findSociIndex(viaProxy, image.descriptor.digest, { signal: controller.signal }),
    );
    expectAborted(err, reason);
    expect(ms).toBeLessThan(PROMPT_MS);
    expect(proxy.requests.length).toBe(before);
  });

  it('an abort while the registry hangs ends the discovery promptly; no request starts after it', async () => {
    const controller = new AbortController();
    const reason = new Error('no longer needed');
    // The v1 lookup (the referrers API first) never gets an answer.
    proxy.inject({ kind: 'stall-headers', match: (_m, p) => p.includes('/referrers/') });
    const before = proxy.requests.length;
    setTimeout(() => controller.abort(reason), 300);
    const { err, ms } = await failure(
      findSociIndex(viaProxy, image.descriptor.digest, { signal: controller.signal }),
    );
    expectAborted(err, reason);
    expect(ms).toBeLessThan(300 + PROMPT_MS);
    const sent = proxy.requests.length;
    expect(sent).toBeGreaterThan(before); // it was waiting on the registry, not before it
    await new Promise((r) => setTimeout(r, 300));
    expect(proxy.requests.length).toBe(sent);
  });

  it('an abort while a layer streams ends a build from the registry with INDEX_ABORTED', async () => {
    const controller = new AbortController();
    const reason = new Error('build cancelled');
    proxy.inject({ kind: 'stall-body', afterBytes: 10_000, match: (_m, p) => p.includes('/blobs/sha256') });
    const source = new RegistrySource(viaProxy, parseReference(`${proxy.host}/app:v1`));
    setTimeout(() => controller.abort(reason), 300);
    const { err, ms } = await failure(
      buildSociIndex(source, image, { minLayerSize: 0, signal: controller.signal }),
    );
    expectAborted(err, reason);
    expect(hasCode(err, 'INDEX_LAYER_BUILD_FAILED')).toBe(false);
    expect(ms).toBeLessThan(300 + PROMPT_MS);
  });
});

describe('the signal reaches every registry read', () => {
  it("discovery, zTOC and prefetch fetches pass the caller's signal to the repository", async () => {
    const signal = new AbortController().signal;
    const seen: { call: string; signal: AbortSignal | undefined }[] = [];
    const real = viaProxy;
    const spy = {
      fetchManifest: (ref: string, o: { signal?: AbortSignal } = {}) => {
        seen.push({ call: 'fetchManifest', signal: o.signal });
        return real.fetchManifest(ref, o);
      },
      referrers: (digest: string, o: { signal?: AbortSignal } = {}) => {
        seen.push({ call: 'referrers', signal: o.signal });
        return real.referrers(digest, o);
      },
      fetchBlobBytes: (
        blob: Parameters<Repository['fetchBlobBytes']>[0],
        o: { signal?: AbortSignal } = {},
      ) => {
        seen.push({ call: 'fetchBlobBytes', signal: o.signal });
        return real.fetchBlobBytes(blob, o);
      },
    };
    const found = await findSociIndex(spy, image.descriptor.digest, { signal });
    if (!found) throw new Error('the index pushed in beforeAll was not found');
    const ref = found.index.ztocs[0]!;
    const { ztoc } = await fetchZtoc(spy, ref, { signal });
    expect(ztoc.toc.some((f) => f.name.endsWith('data/blob'))).toBe(true);
    await expect(
      fetchPrefetch(spy, { digest: ref.digest, size: ref.size }, { signal }),
    ).rejects.toMatchObject({
      code: 'INDEX_INVALID', // a zTOC is not a prefetch blob: fetched (with the signal), then refused
    });
    expect(seen.map((s) => s.call)).toEqual([
      'fetchManifest', // v2 annotation
      'referrers',
      'fetchManifest', // the index
      'fetchBlobBytes',
      'fetchBlobBytes',
    ]);
    for (const s of seen) expect(s.signal, s.call).toBe(signal);
  });
});
