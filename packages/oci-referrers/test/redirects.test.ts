import { randomBytes } from 'node:crypto';
import type { IncomingMessage } from 'node:http';
import { afterAll, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, RegistryClient, RegistryError, staticCredentials } from '../src/index.js';
import { basicCredentials, startHttpServer, type TestHttpServer } from './http-servers.js';

// A registry front on 127.0.0.1 that redirects blob GETs to a "storage" server on 127.0.0.2 (another host
// to the client), as registries on S3/GCS/Azure do. The storage server records every request it gets.

const user = 'reg-user';
const password = 'Reg-pa55-9c8d';
const basic = `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;
const signature = 'd34db33fSIGNATUREc0ffee';
const blob = randomBytes(50_000);
const digest = digestOf(blob);

type StorageMode = 'ok' | 'basic-401' | 'bearer-401' | 'expired-403';

describe('redirects to another host never carry credentials', () => {
  let registry: TestHttpServer;
  let storage: TestHttpServer;
  let storageMode: StorageMode = 'ok';
  const storageRequests: { path: string; authorization?: string }[] = [];

  const record = (req: IncomingMessage) =>
    storageRequests.push({ path: req.url ?? '', authorization: req.headers.authorization });

  beforeAll(async () => {
    storage = await startHttpServer((req, res) => {
      record(req);
      if (storageMode === 'basic-401') {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="storage"' });
        res.end();
      } else if (storageMode === 'bearer-401') {
        // A realm on the storage host itself: following it would hand it the registry's password.
        res.writeHead(401, {
          'www-authenticate': `Bearer realm="${storage.url}/token",service="storage"`,
        });
        res.end();
      } else if (storageMode === 'expired-403') {
        res.writeHead(403, { 'content-type': 'application/xml' });
        res.end('<Error><Code>AccessDenied</Code><Message>Request has expired</Message></Error>');
      } else {
        res.writeHead(200, { 'content-length': String(blob.length) });
        res.end(blob);
      }
    }, '127.0.0.2');
    registry = await startHttpServer((req, res) => {
      if (req.headers.authorization !== basic) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="registry"' });
        res.end();
        return;
      }
      res.writeHead(307, {
        location: `${storage.url}/bucket/${digest.slice(7)}?X-Amz-Credential=AKIA&X-Amz-Signature=${signature}`,
      });
      res.end();
    });
  });
  afterAll(async () => {
    await registry?.stop();
    await storage?.stop();
  });
  beforeEach(() => {
    storageRequests.length = 0;
  });

  const newClient = () =>
    new RegistryClient({
      credentials: staticCredentials({ [registry.host]: { username: user, password } }),
      retry: { maxRetries: 0 },
    });

  it('reads a blob and a range through the redirect; storage sees no Authorization', async () => {
    storageMode = 'ok';
    const client = newClient();
    const repo = client.repository(`${registry.host}/app`);
    expect(Buffer.from(await repo.fetchBlobBytes(digest)).equals(blob)).toBe(true);
    expect(Buffer.from(await repo.fetchBlobRange(digest, 10, 20)).equals(blob.subarray(10, 20))).toBe(true);
    await client.close();
    expect(storageRequests).toHaveLength(2);
    expect(storageRequests.map((r) => r.authorization)).toEqual([undefined, undefined]);
  });

  for (const mode of ['basic-401', 'bearer-401'] as const) {
    it(`a 401 from storage (${mode}) is not answered with credentials: UNAUTHORIZED, storage saw none`, async () => {
      const client = newClient();
      const repo = client.repository(`${registry.host}/app`);
      // A first read leaves basic auth cached, so the next request's first answer is the storage's 401.
      storageMode = 'ok';
      await repo.fetchBlobRange(digest, 0, 100);
      storageRequests.length = 0;
      storageMode = mode;
      const error = await repo.fetchBlobRange(digest, 0, 100).catch((e: unknown) => e);
      await client.close();
      expect(error).toBeInstanceOf(RegistryError);
      expect(error).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', status: 401 });
      expect((error as Error).message).toContain('never gets credentials');
      // One GET, no retry with credentials and no token request to the realm the storage named.
      expect(storageRequests).toHaveLength(1);
      expect(storageRequests[0]?.path).toMatch(/^\/bucket\//);
      expect(storageRequests[0]?.authorization).toBeUndefined();
    });
  }

  it('an expired pre-signed URL fails with the query redacted from message and fields', async () => {
    storageMode = 'expired-403';
    const client = newClient();
    const error = await client
      .repository(`${registry.host}/app`)
      .fetchBlobBytes(digest)
      .catch((e: unknown) => e);
    await client.close();
    expect(error).toMatchObject({ code: 'REGISTRY_DENIED', status: 403 });
    const e = error as RegistryError;
    expect(e.message).toContain(`${storage.url}/bucket/${digest.slice(7)}?<redacted>`);
    expect(e.url).toBe(`${storage.url}/bucket/${digest.slice(7)}?<redacted>`);
    const visible = [e.message, e.stack ?? '', JSON.stringify(e)].join('\n');
    for (const secret of [signature, 'AKIA', password, basic]) expect(visible).not.toContain(secret);
  });
});

describe('a token realm on another host', () => {
  it('gets the credentials when the registry itself names it; the redirect target still gets none', async () => {
    const tokenRequests: (string | undefined)[] = [];
    const storageAuth: (string | undefined)[] = [];
    const storage = await startHttpServer((req, res) => {
      storageAuth.push(req.headers.authorization);
      res.writeHead(200, { 'content-length': String(blob.length) });
      res.end(blob);
    }, '127.0.0.2');
    const auth = await startHttpServer((req, res) => {
      tokenRequests.push(basicCredentials(req)?.password);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end('{"token":"tok-123","expires_in":300}');
    }, '127.0.0.3');
    const registry = await startHttpServer((req, res) => {
      if (req.headers.authorization !== 'Bearer tok-123') {
        res.writeHead(401, { 'www-authenticate': `Bearer realm="${auth.url}/token",service="reg"` });
        res.end();
        return;
      }
      res.writeHead(307, { location: `${storage.url}/blob?sig=${signature}` });
      res.end();
    });
    const client = new RegistryClient({
      credentials: staticCredentials({ [registry.host]: { username: user, password } }),
    });
    try {
      const got = await client.repository(`${registry.host}/app`).fetchBlobBytes(digest);
      expect(Buffer.from(got).equals(blob)).toBe(true);
      expect(tokenRequests).toEqual([password]);
      expect(storageAuth).toEqual([undefined]);
    } finally {
      await client.close();
      await Promise.all([registry.stop(), auth.stop(), storage.stop()]);
    }
  });
});
