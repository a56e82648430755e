import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  type BuiltImage,
  pushImage,
  skopeo,
  startFaultProxy,
  startRegistry,
  type TestRegistry,
} from '@soci-ts/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Descriptor,
  digestOf,
  type ImageManifest,
  MediaType,
  RegistryClient,
  RegistryError,
  referrersTag,
} from '../src/index.js';

// A real docker-registry (distribution 2.8, no referrers API) with an image made by umoci and pushed by skopeo.
let registry: TestRegistry;
let image: BuiltImage & { reference: string };
let client: RegistryClient;
const big = randomBytes(300_000);

beforeAll(async () => {
  registry = await startRegistry();
  image = await pushImage({
    host: registry.host,
    repository: 'test/app',
    tag: 'v1',
    layers: [{ 'etc/hello.txt': 'hello\n' }, { 'data/big.bin': big, 'data/small.txt': 'small' }],
  });
  client = new RegistryClient({ chunkSize: 64 * 1024, monolithicUploadLimit: 100 * 1024 });
});

afterAll(async () => {
  await client?.close();
  await image?.cleanup();
  await registry?.stop();
});

describe('reading an image pushed by skopeo', () => {
  it('gets the manifest bytes skopeo sees, by tag and by digest, with the computed digest', async () => {
    const raw = await skopeo(['inspect', '--raw', '--tls-verify=false', `docker://${image.reference}`]);
    const repo = client.repository(`${registry.host}/test/app`);
    const byTag = await repo.fetchManifest('v1');
    expect(Buffer.from(byTag.bytes).toString()).toBe(raw);
    expect(byTag.descriptor.digest).toBe(image.manifestDigest);
    expect(byTag.descriptor.mediaType).toBe(MediaType.OciManifest);
    const byDigest = await repo.fetchManifest(image.manifestDigest);
    expect(Buffer.from(byDigest.bytes).toString()).toBe(raw);
    const resolved = await repo.resolve('v1');
    expect(resolved).toEqual(byTag.descriptor);
  });

  it('streams every blob byte for byte equal to the OCI layout file, digest-verified', async () => {
    const repo = client.repository(`${registry.host}/test/app`);
    const { manifest } = await repo.fetchManifest('v1');
    const m = manifest as ImageManifest;
    expect(m.layers).toHaveLength(2);
    for (const desc of [m.config, ...m.layers]) {
      const expected = await readFile(image.blobPath(desc.digest));
      expect(Buffer.from(await repo.fetchBlobBytes(desc)).equals(expected)).toBe(true);
      expect(await repo.blobExists(desc.digest)).toMatchObject({ digest: desc.digest, size: desc.size });
    }
  });

  it('a range read equals the same slice of the layout file (random ranges)', async () => {
    const repo = client.repository(`${registry.host}/test/app`);
    const layer = ((await repo.fetchManifest('v1')).manifest as ImageManifest).layers[1]!;
    const file = await readFile(image.blobPath(layer.digest));
    const reader = repo.blobReader(layer);
    expect(reader.size).toBe(file.length);
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: file.length - 1 })
          .chain((start) => fc.tuple(fc.constant(start), fc.integer({ min: start + 1, max: file.length }))),
        async ([start, end]) => {
          const got = await reader.readRange(start, end);
          expect(Buffer.from(got).equals(file.subarray(start, end))).toBe(true);
        },
      ),
      { numRuns: 40 },
    );
    expect(client.supportsRanges(registry.host)).toBeUndefined();
  });

  it('a registry that answers 200 to a range still gives the right slice, and is remembered', async () => {
    const proxy = await startFaultProxy(registry);
    const proxied = new RegistryClient();
    try {
      const repo = proxied.repository(`${proxy.host}/test/app`);
      const layer = ((await repo.fetchManifest('v1')).manifest as ImageManifest).layers[1]!;
      const file = await readFile(image.blobPath(layer.digest));
      for (const [start, end] of [
        [0, 1],
        [1000, 70_000],
        [file.length - 10, file.length],
        [5, file.length],
      ] as const) {
        proxy.inject({ kind: 'ignore-range' });
        const got = await repo.fetchBlobRange(layer.digest, start, end);
        expect(Buffer.from(got).equals(file.subarray(start, end))).toBe(true);
      }
      expect(proxied.supportsRanges(proxy.host)).toBe(false);
    } finally {
      await proxied.close();
      await proxy.stop();
    }
  });

  it('a wrong digest for a blob is BLOB_UNKNOWN, a wrong tag MANIFEST_UNKNOWN, with the registry error', async () => {
    const repo = client.repository(`${registry.host}/test/app`);
    const missing = digestOf(Buffer.from('not there'));
    await expect(repo.fetchBlobBytes(missing)).rejects.toMatchObject({
      code: 'REGISTRY_BLOB_UNKNOWN',
      status: 404,
    });
    const err = await repo.fetchManifest('nope').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(RegistryError);
    expect(err).toMatchObject({
      code: 'REGISTRY_MANIFEST_UNKNOWN',
      status: 404,
      registryCode: 'MANIFEST_UNKNOWN',
    });
    expect(await repo.blobExists(missing)).toBeUndefined();
  });
});

describe('pushing', () => {
  it('pushes blobs (monolithic and chunked) and a manifest that skopeo can copy back', async () => {
    const repo = client.repository(`${registry.host}/pushed/app`);
    const config = Buffer.from(
      JSON.stringify({
        architecture: 'amd64',
        os: 'linux',
        rootfs: { type: 'layers', diff_ids: [] },
        config: {},
      }),
    );
    const smallLayer = randomBytes(10_000);
    const largeLayer = randomBytes(250_000); // > monolithic limit: PATCH chunks of 64 KiB
    const configDesc = await repo.pushBlob(config, { mediaType: MediaType.OciConfig });
    const l1 = await repo.pushBlob(smallLayer, { mediaType: MediaType.OciLayer });
    const l2 = await repo.pushBlob(
      { stream: streamOf(largeLayer, 7777), digest: digestOf(largeLayer), size: largeLayer.length },
      { mediaType: MediaType.OciLayer },
    );
    expect(Buffer.from(await repo.fetchBlobBytes(l2)).equals(largeLayer)).toBe(true);
    const manifest: ImageManifest = {
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: configDesc,
      layers: [l1, l2],
    };
    const pushed = await repo.pushManifest(manifest, { tag: 'v1' });
    expect((await repo.resolve('v1')).digest).toBe(pushed.digest);
    const byDigest = await repo.pushManifest(manifest);
    expect(byDigest.digest).toBe(pushed.digest);
    expect(await repo.tags()).toEqual(['v1']);
    // skopeo's dir: transport keeps blobs as they are, named by hex digest.
    const dir = await mkdtemp(join(tmpdir(), 'soci-copied-'));
    try {
      await skopeo([
        'copy',
        '--quiet',
        '--src-tls-verify=false',
        `docker://${registry.host}/pushed/app:v1`,
        `dir:${dir}`,
      ]);
      expect((await readFile(join(dir, l2.digest.slice(7)))).equals(largeLayer)).toBe(true);
      expect((await readFile(join(dir, 'manifest.json'))).toString()).toBe(JSON.stringify(manifest));
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });

  it('skips a blob the registry has, and mounts one from another repository', async () => {
    const source = client.repository(`${registry.host}/mount/source`);
    const target = client.repository(`${registry.host}/mount/target`);
    const blob = randomBytes(5000);
    const desc = await source.pushBlob(blob);
    expect(await source.pushBlob(blob)).toEqual(desc);
    expect(await target.blobExists(desc.digest)).toBeUndefined();
    expect(await target.mountBlob(desc, 'mount/source')).toBe(true);
    expect(await target.blobExists(desc.digest)).toBeDefined();
    const other = randomBytes(100);
    const pushed = await target.pushBlob(other, { mountFrom: ['mount/source'] }); // mount fails -> upload
    expect(Buffer.from(await target.fetchBlobBytes(pushed)).equals(other)).toBe(true);
  });
});

describe('referrers via the tag schema (no referrers API)', () => {
  it('lists two referrers pushed one after the other, filtered by artifactType', async () => {
    const repo = client.repository(`${registry.host}/test/app`);
    const subject = await repo.resolve('v1');
    const empty = await repo.pushBlob(Buffer.from('{}'), { mediaType: MediaType.OciEmpty });
    const referrer = (artifactType: string, note: string): ImageManifest => ({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      artifactType,
      config: { ...empty, mediaType: MediaType.OciEmpty },
      layers: [{ ...empty, mediaType: MediaType.OciEmpty }],
      subject,
      annotations: { note },
    });
    expect(await repo.referrers(subject.digest)).toEqual([]);
    const a = await repo.pushManifest(referrer('application/vnd.example.a', 'first'));
    const b = await repo.pushManifest(referrer('application/vnd.example.b', 'second'));
    const all = await repo.referrers(subject.digest);
    expect(all.map((d) => d.digest)).toEqual([a.digest, b.digest]);
    expect(all[0]).toMatchObject({
      artifactType: 'application/vnd.example.a',
      annotations: { note: 'first' },
    });
    // Without the tag fallback, a registry lacking the referrers API lists nothing.
    expect(await repo.referrers(subject.digest, { tagFallback: false })).toEqual([]);
    const onlyB = await repo.referrers(subject.digest, { artifactType: 'application/vnd.example.b' });
    expect(onlyB.map((d: Descriptor) => d.digest)).toEqual([b.digest]);
    // Pushing the same referrer again does not list it twice.
    await repo.pushManifest(referrer('application/vnd.example.a', 'first'));
    expect(await repo.referrers(subject.digest)).toHaveLength(2);
    expect(await repo.tags()).toContain(referrersTag(subject.digest));
  });
});

async function* streamOf(bytes: Uint8Array, piece: number): AsyncGenerator<Uint8Array> {
  for (let i = 0; i < bytes.length; i += piece) yield bytes.subarray(i, i + piece);
}
