import { randomBytes } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { createSecureServer, type Http2SecureServer } from 'node:http2';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestOf, type HostOptions, RegistryClient } from '../src/index.js';

// An HTTPS registry with a self-signed certificate made by openssl; HTTP/2 or HTTP/1.1 by ALPN.
describe('per-host TLS options', () => {
  const blob = randomBytes(50_000);
  const digest = digestOf(blob);
  let server: Http2SecureServer;
  let host: string;
  let cert: string;
  let dir: string;
  const versions: string[] = [];

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-tls-'));
    await run('openssl', [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      join(dir, 'key.pem'),
      '-out',
      join(dir, 'cert.pem'),
    ]);
    cert = await readFile(join(dir, 'cert.pem'), 'utf8');
    server = createSecureServer(
      { key: await readFile(join(dir, 'key.pem')), cert, allowHTTP1: true },
      (req, res) => {
        versions.push(req.httpVersion);
        const range = /bytes=(\d+)-(\d+)/.exec(req.headers.range ?? '');
        if (range) {
          const [start, last] = [Number(range[1]), Number(range[2])];
          res.writeHead(206, { 'content-range': `bytes ${start}-${last}/${blob.length}` });
          res.end(blob.subarray(start, last + 1));
        } else {
          res.writeHead(200, { 'content-length': String(blob.length) });
          res.end(blob);
        }
      },
    );
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const address = server.address();
    host = `127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  });
  afterAll(async () => {
    await new Promise((r) => server.close(r));
    await rm(dir, { recursive: true, force: true });
  });

  const read = async (options: HostOptions) => {
    const client = new RegistryClient({
      hosts: { [host]: { plainHttp: false, ...options } },
      retry: { maxRetries: 0 },
    });
    try {
      const repo = client.repository(`${host}/x`);
      const all = await repo.fetchBlobBytes(digest);
      const part = await repo.fetchBlobRange(digest, 100, 200);
      return { all, part };
    } finally {
      await client.close();
    }
  };

  it('refuses an unknown certificate with a NETWORK error', async () => {
    await expect(read({})).rejects.toMatchObject({ code: 'REGISTRY_NETWORK' });
  });

  it('accepts it with insecureSkipVerify or with the CA given, and speaks HTTP/2', async () => {
    for (const options of [{ insecureSkipVerify: true }, { ca: cert }]) {
      versions.length = 0;
      const { all, part } = await read(options);
      expect(Buffer.from(all).equals(blob)).toBe(true);
      expect(Buffer.from(part).equals(blob.subarray(100, 200))).toBe(true);
      expect(versions).toEqual(['2.0', '2.0']);
    }
  });
});
