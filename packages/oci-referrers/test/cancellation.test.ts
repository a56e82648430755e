import { randomBytes } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Readable } from 'node:stream';
import { findCode } from '@soci-ts/errors';
import { afterEach, describe, expect, it } from 'vitest';
import { digestOf, type Manifest, RegistryClient, type Repository } from '../src/index.js';
import { startHttpServer, type TestHttpServer } from './http-servers.js';

// Every read and write takes `{ signal }` and passes it to each request it makes (token requests and
// fallback reads included): an abort in the middle of any of them ends the call at once with
// REGISTRY_ABORTED, the abort's reason as its cause. Timeouts here are a minute, so only the signal can end
// these calls; "at once" is under 2 s on a loaded machine.

const PROMPT_MS = 2000;
const blob = randomBytes(10_000);
const digest = digestOf(blob);
const manifest: Manifest = {
  schemaVersion: 2,
  mediaType: 'application/vnd.oci.image.manifest.v1+json',
  config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest, size: blob.length },
  layers: [],
};

let server: TestHttpServer | undefined;
let client: RegistryClient | undefined;
async function stopAll(): Promise<void> {
  // The server first: it drops what hangs, so closing the client does not wait for it.
  await server?.stop();
  await client?.close();
  server = undefined;
  client = undefined;
}
afterEach(stopAll);

/**
 * A registry whose `handle` answers what it knows and returns false for the request that hangs: that
 * request is held open (headers and some body already sent, or nothing) and `arrived` resolves.
 */
async function hangingRegistry(
  handle: (req: IncomingMessage, res: ServerResponse, url: string) => boolean,
): Promise<{ repo: Repository; arrived: Promise<string> }> {
  let arrive: (what: string) => void = () => undefined;
  const arrived = new Promise<string>((resolve) => {
    arrive = resolve;
  });
  server = await startHttpServer((req, res) => {
    const url = `${req.method} ${req.url}`;
    req.resume();
    if (!handle(req, res, url)) arrive(url);
  });
  client = new RegistryClient({
    timeouts: { headersMs: 60_000, readMs: 60_000, bodyStallMs: 60_000, writeHeadersMs: 60_000 },
    retry: { maxRetries: 0 },
  });
  return { repo: client.repository(`${server.host}/app`), arrived };
}

/** Runs `call` with a signal aborted once the hanging request arrived; its error and how soon it came. */
async function abortWhenArrived(
  arrived: Promise<string>,
  call: (signal: AbortSignal) => Promise<unknown>,
): Promise<{ error: unknown; afterAbortMs: number; reason: Error; hung: string }> {
  const controller = new AbortController();
  const reason = new Error('the test aborts');
  let abortedAt = Number.NaN;
  let hung = '';
  void arrived.then((what) => {
    hung = what;
    // A moment later, so the request (and any body already sent) is in flight on the client too.
    setTimeout(() => {
      abortedAt = performance.now();
      controller.abort(reason);
    }, 50);
  });
  const error = await call(controller.signal).then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, afterAbortMs: performance.now() - abortedAt, reason, hung };
}

function expectAbortedBy(outcome: { error: unknown; afterAbortMs: number; reason: Error }): void {
  expect(outcome.error).toMatchObject({ name: 'RegistryError', code: 'REGISTRY_ABORTED' });
  expect((outcome.error as Error).cause).toBe(outcome.reason);
  expect(findCode(outcome.error, 'REGISTRY_ABORTED')).toBe(outcome.error);
  expect(outcome.afterAbortMs).toBeLessThan(PROMPT_MS);
}

async function drain(stream: Readable): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of stream) chunks.push(c as Buffer);
  return Buffer.concat(chunks);
}

/** Headers and the first `sent` bytes of `body`, then nothing: a body stalled half way. */
function halfBody(res: ServerResponse, status: number, headers: Record<string, string>, body: Buffer): false {
  res.writeHead(status, { ...headers, 'content-length': String(body.length) });
  res.write(body.subarray(0, body.length >> 1));
  return false;
}

describe('an abort in the middle of a read', () => {
  it('a range read whose body is half sent', async () => {
    const { repo, arrived } = await hangingRegistry((_req, res) =>
      halfBody(res, 206, { 'content-range': `bytes 0-999/${blob.length}` }, blob.subarray(0, 1000)),
    );
    expectAbortedBy(
      await abortWhenArrived(arrived, (signal) => repo.fetchBlobRange(digest, 0, 1000, { signal })),
    );
  });

  it("a blob reader's read", async () => {
    const { repo, arrived } = await hangingRegistry(() => false);
    const reader = repo.blobReader({ mediaType: 'x', digest, size: blob.length });
    expectAbortedBy(await abortWhenArrived(arrived, (signal) => reader.readRange(0, 10, { signal })));
  });

  it('a blob stream half read, and the whole-blob read', async () => {
    const { repo, arrived } = await hangingRegistry((_req, res) => halfBody(res, 200, {}, blob));
    expectAbortedBy(
      await abortWhenArrived(arrived, async (signal) => drain(await repo.fetchBlob(digest, { signal }))),
    );
    const again = await hangingRegistry((_req, res) => halfBody(res, 200, {}, blob));
    expectAbortedBy(
      await abortWhenArrived(again.arrived, (signal) => again.repo.fetchBlobBytes(digest, { signal })),
    );
  });

  it('a manifest whose body is half sent, and one behind an index (fetchImageManifest)', async () => {
    const bytes = Buffer.from(JSON.stringify(manifest));
    const type = { 'content-type': manifest.mediaType! };
    const { repo, arrived } = await hangingRegistry((_req, res) => halfBody(res, 200, type, bytes));
    expectAbortedBy(await abortWhenArrived(arrived, (signal) => repo.fetchManifest('v1', { signal })));

    const image = await hangingRegistry((_req, res) => halfBody(res, 200, type, bytes));
    const platform = { os: 'linux', architecture: 'amd64' };
    expectAbortedBy(
      await abortWhenArrived(image.arrived, (signal) =>
        image.repo.fetchImageManifest('v1', platform, { signal }),
      ),
    );
  });

  it('resolve, blobExists and tags with no answer', async () => {
    for (const read of [
      (repo: Repository, signal: AbortSignal) => repo.resolve('v1', { signal }),
      (repo: Repository, signal: AbortSignal) => repo.blobExists(digest, { signal }),
      (repo: Repository, signal: AbortSignal) => repo.tags({ signal }),
    ]) {
      const { repo, arrived } = await hangingRegistry(() => false);
      expectAbortedBy(await abortWhenArrived(arrived, (signal) => read(repo, signal)));
      await stopAll();
    }
  });

  it('the token request of a read', async () => {
    const { repo, arrived } = await hangingRegistry((_req, res, url) => {
      if (url.includes('/token')) return false;
      res.writeHead(401, { 'www-authenticate': `Bearer realm="${server!.url}/token",service="reg"` });
      res.end();
      return true;
    });
    const outcome = await abortWhenArrived(arrived, (signal) => repo.fetchManifest('v1', { signal }));
    expect(outcome.hung).toMatch(/^GET \/token\?/);
    expectAbortedBy(outcome);
  });

  it('a credentials provider that never answers', async () => {
    let asked: () => void = () => undefined;
    const questionAsked = new Promise<string>((resolve) => {
      asked = () => resolve('credentials');
    });
    server = await startHttpServer((req, res) => {
      req.resume();
      res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' });
      res.end();
    });
    client = new RegistryClient({
      credentials: () => {
        asked();
        return new Promise(() => undefined);
      },
      timeouts: { readMs: 60_000 },
    });
    const repo = client.repository(`${server.host}/app`);
    expectAbortedBy(await abortWhenArrived(questionAsked, (signal) => repo.fetchManifest('v1', { signal })));
  });

  it("the referrers API's page and the tag schema's fallback read", async () => {
    const { repo, arrived } = await hangingRegistry(() => false);
    expectAbortedBy(await abortWhenArrived(arrived, (signal) => repo.referrers(digest, { signal })));

    const fallback = await hangingRegistry((_req, res, url) => {
      if (!url.includes('/referrers/')) return false; // the sha256-<hex> tag hangs
      res.writeHead(404);
      res.end();
      return true;
    });
    const outcome = await abortWhenArrived(fallback.arrived, (signal) =>
      fallback.repo.referrers(digest, { signal }),
    );
    expect(outcome.hung).toBe(`GET /v2/app/manifests/${digest.replace(':', '-')}`);
    expectAbortedBy(outcome);
  });
});

describe('an abort in the middle of a write', () => {
  it('pushBlob: its HEAD, its upload POST, its PUT', async () => {
    for (const hangOn of ['HEAD', 'POST', 'PUT']) {
      const { repo, arrived } = await hangingRegistry((req, res) => {
        if (req.method === hangOn) return false;
        if (req.method === 'HEAD') res.writeHead(404);
        else res.writeHead(202, { location: `/v2/app/blobs/uploads/1` });
        res.end();
        return true;
      });
      const outcome = await abortWhenArrived(arrived, (signal) => repo.pushBlob(blob, { signal }));
      expect(outcome.hung.startsWith(hangOn)).toBe(true);
      expectAbortedBy(outcome);
      await stopAll();
    }
  });

  it('pushManifest, and mountBlob', async () => {
    const { repo, arrived } = await hangingRegistry(() => false);
    expectAbortedBy(
      await abortWhenArrived(arrived, (signal) => repo.pushManifest(manifest, { tag: 'v1', signal })),
    );
    const mount = await hangingRegistry(() => false);
    expectAbortedBy(
      await abortWhenArrived(mount.arrived, (signal) => mount.repo.mountBlob(digest, 'other', { signal })),
    );
  });

  it('the fallback index update of a manifest with a subject', async () => {
    const withSubject: Manifest = {
      ...manifest,
      subject: { mediaType: manifest.mediaType!, digest, size: 1 },
    };
    const { repo, arrived } = await hangingRegistry((req, res) => {
      if (req.method === 'PUT') {
        res.writeHead(201); // no OCI-Subject: the client must update the fallback index itself
        res.end();
        return true;
      }
      return false; // its read of the current fallback index hangs
    });
    const outcome = await abortWhenArrived(arrived, (signal) => repo.pushManifest(withSubject, { signal }));
    expect(outcome.hung).toBe(`GET /v2/app/manifests/${digest.replace(':', '-')}`);
    expectAbortedBy(outcome);
  });

  it('an aborted signal sends nothing', async () => {
    let requests = 0;
    server = await startHttpServer((_req, res) => {
      requests++;
      res.writeHead(500);
      res.end();
    });
    client = new RegistryClient();
    const repo = client.repository(`${server.host}/app`);
    const signal = AbortSignal.abort(new Error('before'));
    for (const write of [
      () => repo.pushBlob(blob, { signal }),
      () => repo.pushManifest(manifest, { signal }),
      () => repo.mountBlob(digest, 'other', { signal }),
    ]) {
      await expect(write()).rejects.toMatchObject({ code: 'REGISTRY_ABORTED', cause: signal.reason });
    }
    expect(requests).toBe(0);
  });
});
