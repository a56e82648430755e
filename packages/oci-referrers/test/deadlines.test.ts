import { randomBytes } from 'node:crypto';
import type { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, RegistryClient, type RegistryClientOptions, RegistryError } from '../src/index.js';
import { startHttpServer, startSilentServer, type TestHttpServer } from './http-servers.js';

// Registries that accept connections and then say nothing (or stop mid-body) must fail a read with a typed
// error within the configured budget. Bounds are generous (5 s for a 500 ms budget) for a loaded machine.

const blob = randomBytes(12_000);
const digest = digestOf(blob);
const GENEROUS_MS = 5000;

/** Runs `read`, returning its error and how long it took to fail. */
async function failure(read: () => Promise<unknown>): Promise<{ error: unknown; ms: number }> {
  const started = performance.now();
  const error = await read().then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, ms: performance.now() - started };
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

describe('a registry that accepts connections and never answers', () => {
  let silent: Awaited<ReturnType<typeof startSilentServer>>;
  beforeAll(async () => {
    silent = await startSilentServer();
  });
  afterAll(async () => {
    await silent?.stop();
  });

  const clientWith = (timeouts: RegistryClientOptions['timeouts']) =>
    new RegistryClient({ timeouts, retry: { baseDelayMs: 50, maxDelayMs: 100 } });

  it('fails a range read with TIMEOUT at the read budget, retries included', async () => {
    const client = clientWith({ headersMs: 200, readMs: 500 });
    const { error, ms } = await failure(() =>
      client.repository(`${silent.host}/app`).fetchBlobRange(digest, 0, 100),
    );
    await client.close();
    expect(error).toBeInstanceOf(RegistryError);
    expect(error).toMatchObject({ code: 'REGISTRY_TIMEOUT' });
    expect((error as Error).message).toContain('no complete answer within 500 ms, retries included');
    expect(ms).toBeLessThan(GENEROUS_MS);
  });

  it('the read budget bounds a read even when the headers timeout is longer (manifest, HEAD, blob stream)', async () => {
    const client = clientWith({ headersMs: 60_000, readMs: 500 });
    const repo = client.repository(`${silent.host}/app`);
    for (const read of [
      () => repo.fetchManifest('v1'),
      () => repo.resolve('v1'),
      () => repo.blobExists(digest),
      () => repo.fetchBlob(digest),
      () => repo.tags(),
    ]) {
      const { error, ms } = await failure(read);
      expect(error).toMatchObject({ code: 'REGISTRY_TIMEOUT' });
      expect(ms).toBeLessThan(GENEROUS_MS);
    }
    await client.close();
  });

  it('a caller signal aborts the read with ABORTED; an aborted signal sends nothing', async () => {
    const client = clientWith({ headersMs: 60_000, readMs: 60_000 });
    const repo = client.repository(`${silent.host}/app`);
    const { error, ms } = await failure(() =>
      repo.fetchBlobRange(digest, 0, 100, { signal: AbortSignal.timeout(300) }),
    );
    expect(error).toMatchObject({ code: 'REGISTRY_ABORTED' });
    expect(ms).toBeLessThan(GENEROUS_MS);
    const before = silent.connections();
    const controller = new AbortController();
    controller.abort();
    await expect(
      repo.blobReader({ mediaType: 'x', digest, size: 1 }).readRange(0, 1, controller),
    ).rejects.toMatchObject({
      code: 'REGISTRY_ABORTED',
    });
    expect(silent.connections()).toBe(before);
    await client.close();
  });

  it('a token realm that never answers fails the read with TIMEOUT too', async () => {
    const registry = await startHttpServer((_req, res) => {
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${silent.url}/token",service="reg"` });
      res.end();
    });
    const client = clientWith({ headersMs: 60_000, readMs: 500 });
    const { error, ms } = await failure(() => client.repository(`${registry.host}/app`).fetchManifest('v1'));
    await client.close();
    await registry.stop();
    expect(error).toMatchObject({ code: 'REGISTRY_TIMEOUT' });
    expect(ms).toBeLessThan(GENEROUS_MS);
  });
});

describe('a registry that stops sending mid-body, or sends slowly', () => {
  let registry: TestHttpServer;
  let mode: 'stall' | 'slow' = 'stall';

  beforeAll(async () => {
    registry = await startHttpServer((req, res) => {
      if (mode === 'stall') {
        // Headers and 10 bytes of the 100 announced, then silence.
        res.writeHead(206, { 'content-range': `bytes 0-99/${blob.length}`, 'content-length': '100' });
        res.write(blob.subarray(0, 10));
        return;
      }
      // The whole blob in 12 chunks over about 1.2 s: slow, but never stalled.
      res.writeHead(200, { 'content-length': String(blob.length) });
      let sent = 0;
      const timer = setInterval(() => {
        res.write(blob.subarray(sent, sent + 1000));
        sent += 1000;
        if (sent >= blob.length) {
          clearInterval(timer);
          res.end();
        }
      }, 100);
      req.on('close', () => clearInterval(timer));
    });
  });
  afterAll(async () => {
    await registry?.stop();
  });

  it('a range read whose body stops fails with TIMEOUT at the read budget', async () => {
    mode = 'stall';
    const client = new RegistryClient({ timeouts: { bodyStallMs: 60_000, readMs: 500 } });
    const { error, ms } = await failure(() =>
      client.repository(`${registry.host}/app`).fetchBlobRange(digest, 0, 100),
    );
    await client.close();
    expect(error).toMatchObject({ code: 'REGISTRY_TIMEOUT' });
    expect(ms).toBeLessThan(GENEROUS_MS);
  });

  it('a blob stream is bounded by the stall timeout, not by the read budget, and a signal aborts it', async () => {
    mode = 'slow';
    const client = new RegistryClient({ timeouts: { readMs: 300 } });
    const repo = client.repository(`${registry.host}/app`);
    expect((await drain(await repo.fetchBlob(digest))).equals(blob)).toBe(true);

    const controller = new AbortController();
    const stream = await repo.fetchBlob(digest, { signal: controller.signal });
    stream.once('data', () => controller.abort());
    const error = await drain(stream).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_ABORTED' });
    await client.close();
  });
});
