import { createServer, type Server } from 'node:http';
import { pushImage, startReferrersRegistry, type TestRegistry } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type Descriptor,
  digestOf,
  type ImageIndex,
  type ImageManifest,
  MediaType,
  RegistryClient,
  referrersTag,
} from '../src/index.js';

/** An artifact type the filter must match exactly (SOCI's own constants live in soci-index). */
const SOCI_INDEX_V1 = 'application/vnd.amazon.soci.index.v1+json';

describe('referrers via the OCI referrers API (go-containerregistry registry)', () => {
  let registry: TestRegistry;
  const client = new RegistryClient();

  beforeAll(async () => {
    registry = await startReferrersRegistry();
  });
  afterAll(async () => {
    await client.close();
    await registry?.stop();
  });

  it('lists referrers from the API, filters locally, and writes no fallback tag when OCI-Subject is answered', async () => {
    const image = await pushImage({
      host: registry.host,
      repository: 'app',
      tag: 'v1',
      layers: [{ a: 'a' }],
    });
    await image.cleanup();
    const repo = client.repository(`${registry.host}/app`);
    const subject = await repo.resolve('v1');
    const empty = await repo.pushBlob(Buffer.from('{}'), { mediaType: MediaType.OciEmpty });
    const index = (configType: string): ImageManifest => ({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: { ...empty, mediaType: configType },
      layers: [{ ...empty, mediaType: MediaType.OciEmpty }],
      subject,
    });
    const v1 = await repo.pushManifest(index(SOCI_INDEX_V1));
    const other = await repo.pushManifest(index('application/vnd.example.sig'));
    const all = await repo.referrers(subject.digest);
    expect(all.map((d) => d.digest).sort()).toEqual([v1.digest, other.digest].sort());
    const soci = await repo.referrers(subject.digest, { artifactType: SOCI_INDEX_V1 });
    expect(soci).toEqual([expect.objectContaining({ digest: v1.digest, artifactType: SOCI_INDEX_V1 })]);
    expect(await repo.tags()).not.toContain(referrersTag(subject.digest));
  });
});

describe('referrers API answers (small fake registry)', () => {
  const subject = digestOf(Buffer.from('subject'));
  const descs: Descriptor[] = [
    { mediaType: MediaType.OciManifest, digest: digestOf(Buffer.from('a')), size: 1, artifactType: 'type/a' },
    { mediaType: MediaType.OciManifest, digest: digestOf(Buffer.from('b')), size: 1, artifactType: 'type/b' },
  ];
  let server: Server;
  let host: string;
  let filtersApplied = false;

  beforeAll(async () => {
    server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://x');
      const page = url.searchParams.get('page');
      const index: ImageIndex = {
        schemaVersion: 2,
        mediaType: MediaType.OciIndex,
        manifests: page ? [descs[1]!] : [descs[0]!],
      };
      const headers: Record<string, string> = { 'content-type': MediaType.OciIndex };
      if (filtersApplied) headers['oci-filters-applied'] = 'artifactType';
      if (!page) headers.link = `<${url.pathname}?page=2>; rel="next"`;
      res.writeHead(200, headers);
      res.end(JSON.stringify(index));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  it('follows Link pages and filters locally unless OCI-Filters-Applied says the registry did', async () => {
    const client = new RegistryClient();
    const repo = client.repository(`${host}/x`);
    filtersApplied = false;
    expect((await repo.referrers(subject)).map((d) => d.artifactType)).toEqual(['type/a', 'type/b']);
    expect((await repo.referrers(subject, { artifactType: 'type/b' })).map((d) => d.artifactType)).toEqual([
      'type/b',
    ]);
    filtersApplied = true; // the registry claims it filtered: its answer is taken as it is
    expect((await repo.referrers(subject, { artifactType: 'type/b' })).map((d) => d.artifactType)).toEqual([
      'type/a',
      'type/b',
    ]);
    await client.close();
  });
});
