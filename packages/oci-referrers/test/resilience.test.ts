import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import {
  type FaultProxy,
  freePort,
  pushImage,
  startFaultProxy,
  startRegistry,
  type TestRegistry,
} from '@soci-ts/testing';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  DigestMismatchError,
  digestOf,
  type ImageManifest,
  RegistryClient,
  type RegistryClientOptions,
  RegistryError,
  staticCredentials,
} from '../src/index.js';

const fast: RegistryClientOptions['retry'] = { baseDelayMs: 1, maxDelayMs: 5 };

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('retries and timeouts through a fault-injecting proxy', () => {
  let registry: TestRegistry;
  let proxy: FaultProxy;
  let layer: ImageManifest['layers'][number];
  const isManifest = (_m: string, p: string) => p.includes('/manifests/');
  const isBlob = (_m: string, p: string) => p.includes('/blobs/sha256');

  beforeAll(async () => {
    registry = await startRegistry();
    const image = await pushImage({
      host: registry.host,
      repository: 'app',
      tag: 'v1',
      layers: [{ big: randomBytes(200_000) }],
    });
    await image.cleanup();
    proxy = await startFaultProxy(registry);
    const client = new RegistryClient();
    layer = ((await client.repository(`${registry.host}/app`).fetchManifest('v1')).manifest as ImageManifest)
      .layers[0]!;
    await client.close();
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  it('retries 503s, 429 with Retry-After and connection resets, then succeeds', async () => {
    const client = new RegistryClient({ retry: fast });
    const repo = client.repository(`${proxy.host}/app`);
    proxy.inject(
      { kind: 'status', status: 503, match: isManifest },
      { kind: 'status', status: 429, retryAfter: '0', match: isManifest },
      { kind: 'reset', match: isManifest },
    );
    const before = proxy.requests.length;
    expect((await repo.resolve('v1')).size).toBeGreaterThan(0);
    expect(proxy.requests.length - before).toBe(4);
    await client.close();
  });

  it('gives up after the retry budget with a typed error that carries the status and registry code', async () => {
    const client = new RegistryClient({ retry: { ...fast, maxRetries: 2 } });
    const repo = client.repository(`${proxy.host}/app`);
    for (let i = 0; i < 3; i++) proxy.inject({ kind: 'status', status: 503, match: isManifest });
    const error = await repo.fetchManifest('v1').catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAVAILABLE', status: 503, registryCode: 'UNAVAILABLE' });
    // A Retry-After beyond the limit fails at once instead of sleeping.
    proxy.inject({ kind: 'status', status: 429, retryAfter: '3600', match: isManifest });
    await expect(repo.fetchManifest('v1')).rejects.toMatchObject({
      code: 'REGISTRY_TOOMANYREQUESTS',
      status: 429,
    });
    await client.close();
  });

  it('times out when headers never come (TIMEOUT), and a retry after it succeeds', async () => {
    const client = new RegistryClient({ retry: { ...fast, maxRetries: 0 }, timeouts: { headersMs: 300 } });
    proxy.inject({ kind: 'stall-headers', match: isManifest });
    await expect(client.repository(`${proxy.host}/app`).resolve('v1')).rejects.toMatchObject({
      code: 'REGISTRY_TIMEOUT',
    });
    await client.close();
    const retrying = new RegistryClient({ retry: fast, timeouts: { headersMs: 300 } });
    proxy.inject({ kind: 'stall-headers', match: isManifest });
    expect((await retrying.repository(`${proxy.host}/app`).resolve('v1')).digest).toMatch(/^sha256:/);
    await retrying.close();
  });

  it('a body that stalls fails the blob stream and a range read with TIMEOUT', async () => {
    const client = new RegistryClient({ retry: { ...fast, maxRetries: 0 }, timeouts: { bodyStallMs: 300 } });
    const repo = client.repository(`${proxy.host}/app`);
    proxy.inject({ kind: 'stall-body', afterBytes: 1000, match: isBlob });
    const error = await drain(await repo.fetchBlob(layer)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'REGISTRY_TIMEOUT' });
    proxy.inject({ kind: 'stall-body', afterBytes: 10, match: isBlob });
    await expect(repo.fetchBlobRange(layer.digest, 0, 50_000)).rejects.toMatchObject({
      code: 'REGISTRY_TIMEOUT',
    });
    await client.close();
  });

  it('a range read or manifest whose body stalls or resets is read again', async () => {
    const client = new RegistryClient({ retry: fast, timeouts: { bodyStallMs: 300 } });
    const repo = client.repository(`${proxy.host}/app`);
    const whole = await repo.fetchBlobBytes(layer);
    proxy.inject({ kind: 'stall-body', afterBytes: 10, match: isBlob });
    const part = await repo.fetchBlobRange(layer.digest, 100, 60_000);
    expect(Buffer.from(part).equals(Buffer.from(whole).subarray(100, 60_000))).toBe(true);
    proxy.inject({ kind: 'stall-body', afterBytes: 10, match: isManifest });
    expect((await repo.fetchManifest('v1')).descriptor.size).toBeGreaterThan(10);
    await client.close();
  });

  it('a closed port is a NETWORK error after the retries', async () => {
    const port = await freePort();
    const client = new RegistryClient({ retry: { ...fast, maxRetries: 1 } });
    await expect(client.repository(`127.0.0.1:${port}/app`).resolve('v1')).rejects.toMatchObject({
      code: 'REGISTRY_NETWORK',
    });
    await client.close();
  });
});

describe('a small fake registry: wrong bytes, 200 to ranges, redirects', () => {
  const blob = randomBytes(100_000);
  const digest = digestOf(blob);
  const manifestBytes = Buffer.from('{"schemaVersion":2,"config":{},"layers":[]}');
  let registryServer: Server;
  let storageServer: Server;
  let host: string;
  let storage: string;
  const storageAuthHeaders: (string | undefined)[] = [];
  let mode: 'ok' | 'corrupt' | 'full-no-length' | 'redirect' | 'bad-range' = 'ok';

  const listen = async (handler: (req: IncomingMessage, res: ServerResponse) => void) => {
    const server = createServer(handler);
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    return { server, host: `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}` };
  };

  beforeAll(async () => {
    ({ server: storageServer, host: storage } = await listen((req, res) => {
      storageAuthHeaders.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(blob);
    }));
    ({ server: registryServer, host } = await listen((req, res) => {
      if (req.headers.authorization !== `Basic ${Buffer.from('u:p').toString('base64')}`) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="fake"' });
        res.end();
        return;
      }
      if (req.url?.includes('/manifests/')) {
        res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
        res.end(mode === 'corrupt' ? Buffer.concat([manifestBytes, Buffer.from(' ')]) : manifestBytes);
        return;
      }
      if (mode === 'redirect') {
        res.writeHead(307, { location: `http://${storage}/bucket/blob?X-Signature=secret` });
        res.end();
      } else if (mode === 'corrupt') {
        const bad = Buffer.from(blob);
        bad[500] = (bad[500]! + 1) % 256;
        res.writeHead(200, { 'content-length': String(bad.length) });
        res.end(bad);
      } else if (mode === 'bad-range') {
        res.writeHead(206, { 'content-range': `bytes 0-9/${blob.length}`, 'content-length': '10' });
        res.end(blob.subarray(0, 10));
      } else {
        // Ignores Range, like some blob stores: 200 with the whole blob, chunked when full-no-length.
        res.writeHead(200, mode === 'full-no-length' ? {} : { 'content-length': String(blob.length) });
        for (let i = 0; i < blob.length; i += 4096) res.write(blob.subarray(i, i + 4096));
        res.end();
      }
    }));
  });
  afterAll(async () => {
    registryServer.closeAllConnections();
    storageServer.closeAllConnections();
    await new Promise((r) => registryServer.close(r));
    await new Promise((r) => storageServer.close(r));
  });

  const newClient = () =>
    new RegistryClient({ credentials: staticCredentials({ [host]: { username: 'u', password: 'p' } }) });

  it('a 200 answer to a range gives exactly the slice (random ranges, with and without Content-Length)', async () => {
    const client = newClient();
    const repo = client.repository(`${host}/x`);
    await fc.assert(
      fc.asyncProperty(
        fc
          .integer({ min: 0, max: blob.length - 1 })
          .chain((s) => fc.tuple(fc.constant(s), fc.integer({ min: s, max: blob.length + 50 }))),
        fc.boolean(),
        async ([start, end], withLength) => {
          mode = withLength ? 'ok' : 'full-no-length';
          const got = await repo.fetchBlobRange(digest, start, end);
          expect(Buffer.from(got).equals(blob.subarray(start, end))).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
    expect(client.supportsRanges(host)).toBe(false);
    await client.close();
  });

  it('wrong blob bytes make the stream fail with DigestMismatchError; a wrong manifest is DIGEST_MISMATCH', async () => {
    const client = newClient();
    const repo = client.repository(`${host}/x`);
    mode = 'corrupt';
    const error = await drain(await repo.fetchBlob(digest)).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(DigestMismatchError);
    expect(error).toMatchObject({ code: 'REGISTRY_DIGEST_MISMATCH', expected: digest });
    await expect(repo.fetchBlobBytes({ mediaType: 'x', digest, size: blob.length })).rejects.toMatchObject({
      code: 'REGISTRY_DIGEST_MISMATCH',
    });
    await expect(repo.fetchManifest(digestOf(manifestBytes))).rejects.toBeInstanceOf(DigestMismatchError);
    mode = 'ok';
    expect((await repo.fetchManifest(digestOf(manifestBytes))).descriptor.digest).toBe(
      digestOf(manifestBytes),
    );
    await client.close();
  });

  it('a 206 with the wrong Content-Range is refused', async () => {
    const client = newClient();
    mode = 'bad-range';
    await expect(client.repository(`${host}/x`).fetchBlobRange(digest, 5, 20)).rejects.toMatchObject({
      code: 'REGISTRY_PROTOCOL',
    });
    await client.close();
  });

  it('follows a redirect to blob storage without sending Authorization there, and hides the signed query', async () => {
    const client = newClient();
    mode = 'redirect';
    storageAuthHeaders.length = 0;
    const got = await client.repository(`${host}/x`).fetchBlobBytes(digest);
    expect(Buffer.from(got).equals(blob)).toBe(true);
    expect(storageAuthHeaders).toEqual([undefined]);
    await client.close();
  });
});
