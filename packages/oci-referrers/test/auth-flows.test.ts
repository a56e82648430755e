import { mkdtemp, rename, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  type Credential,
  type CredentialsProvider,
  digestOf,
  dockerConfigCredentials,
  RegistryClient,
  type Repository,
  staticCredentials,
} from '../src/index.js';
import { basicCredentials, startHttpServer } from './http-servers.js';
import { MANIFEST, startTokenFront, type TokenFront } from './token-front.js';

const user = 'rotating-user';
const password = 'First-pa55-a1b2';

describe('WWW-Authenticate with several challenges (a token front on 127.0.0.1)', () => {
  let front: TokenFront;
  let client: RegistryClient;

  beforeEach(async () => {
    front = await startTokenFront(user, password);
    client = new RegistryClient({
      credentials: staticCredentials({ [front.host]: { username: user, password } }),
      retry: { maxRetries: 0 },
    });
  });
  afterEach(async () => {
    await client.close();
    await front.stop();
  });

  const fetchV1 = () => client.repository(`${front.host}/app`).fetchManifest('v1');

  it('answers the Bearer challenge when Basic comes first in the same header', async () => {
    front.challenge = (realm) => `Basic realm="front", BEARER realm="${realm}", service="front"`;
    expect((await fetchV1()).descriptor.digest).toBe(digestOf(MANIFEST));
    expect(front.tokenRequests).toEqual([{ password }]);
    expect(front.manifestRequests.at(-1)).toMatch(/^Bearer /);
  });

  it('answers the Bearer challenge when it comes in a second WWW-Authenticate header', async () => {
    front.challenge = (realm) => ['Basic realm="front"', `Bearer realm="${realm}",service="front"`];
    expect((await fetchV1()).descriptor.digest).toBe(digestOf(MANIFEST));
    expect(front.tokenRequests).toHaveLength(1);
  });

  it('a malformed WWW-Authenticate is a PROTOCOL error naming the 401, not a silent UNAUTHORIZED', async () => {
    front.challenge = (realm) => `Bearer realm="${realm}`;
    const error = await fetchV1().catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_PROTOCOL', status: 401 });
    expect((error as Error).message).toMatch(/answered 401 with an unreadable WWW-Authenticate header/);
    expect(front.tokenRequests).toEqual([]);
  });
});

const rotated = 'Second-pa55-e5f6';

/** A provider that returns whatever `current` is now, and counts how often it is asked. */
function rotatingProvider(initial: string) {
  const state = { current: initial, calls: 0 };
  const provider: CredentialsProvider = async () => {
    state.calls++;
    return { username: user, password: state.current } satisfies Credential;
  };
  return { state, provider };
}

describe('rotated credentials work without a restart (token front whose password changes)', () => {
  let front: TokenFront;
  let rotation: ReturnType<typeof rotatingProvider>['state'];
  let client: RegistryClient;
  let repo: Repository;

  beforeEach(async () => {
    front = await startTokenFront(user, password);
    const { state, provider } = rotatingProvider(password);
    rotation = state;
    client = new RegistryClient({ credentials: provider, retry: { maxRetries: 0 } });
    repo = client.repository(`${front.host}/app`);
  });
  afterEach(async () => {
    await client.close();
    await front.stop();
  });

  /** The registry's password changes; it may revoke its tokens, and the provider may learn the new one. */
  const rotate = (options: { revokeTokens: boolean; providerKnows: boolean }) => {
    front.password = rotated;
    if (options.revokeTokens) front.revokeTokens();
    if (options.providerKnows) rotation.current = rotated;
  };

  it('a cached token refused with 401 is dropped, the provider asked again, the request retried once', async () => {
    await repo.fetchManifest('v1');
    await repo.fetchManifest('v1');
    expect(rotation.calls).toBe(1); // cached while it works
    rotate({ revokeTokens: true, providerKnows: true });
    expect((await repo.fetchManifest('v1')).descriptor.digest).toBe(digestOf(MANIFEST));
    expect(rotation.calls).toBe(2);
    expect(front.tokenRequests).toEqual([{ password }, { password: rotated }]);
  });

  it('a token server refusing cached credentials for a new scope gets the re-read ones', async () => {
    await repo.fetchManifest('v1');
    rotate({ revokeTokens: false, providerKnows: true });
    // No token cached for `other`: the cached (old) credentials are refused by the token server first.
    await client.repository(`${front.host}/other`).fetchManifest('v1');
    expect(front.tokenRequests).toEqual([{ password }, { password }, { password: rotated }]);
    expect(rotation.calls).toBe(2);
  });

  it('credentials still wrong after the re-read fail UNAUTHORIZED after one retry, without looping', async () => {
    await repo.fetchManifest('v1');
    rotate({ revokeTokens: true, providerKnows: false });
    const manifestRequestsBefore = front.manifestRequests.length;
    await expect(repo.fetchManifest('v1')).rejects.toMatchObject({
      code: 'REGISTRY_UNAUTHORIZED',
      status: 401,
    });
    expect(rotation.calls).toBe(2);
    expect(front.tokenRequests).toEqual([{ password }, { password }]);
    expect(front.manifestRequests.length - manifestRequestsBefore).toBe(1);
  });

  it('many requests refused together ask the provider once', async () => {
    await repo.fetchManifest('v1');
    rotate({ revokeTokens: true, providerKnows: true });
    await Promise.all(Array.from({ length: 6 }, () => repo.fetchManifest('v1')));
    expect(rotation.calls).toBe(2);
  });

  it('a config.json rewritten by a new docker login is read again', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'soci-rotate-'));
    const path = join(dir, 'config.json');
    const login = async (secret: string) => {
      // docker writes config.json atomically (temp file + rename); so does this test.
      const auth = Buffer.from(`${user}:${secret}`).toString('base64');
      await writeFile(`${path}.tmp`, JSON.stringify({ auths: { [front.host]: { auth } } }));
      await rename(`${path}.tmp`, path);
    };
    await login(password);
    const configClient = new RegistryClient({ credentials: dockerConfigCredentials({ path }) });
    const configRepo = configClient.repository(`${front.host}/app`);
    try {
      await configRepo.fetchManifest('v1');
      rotate({ revokeTokens: true, providerKnows: false });
      await login(rotated);
      expect((await configRepo.fetchManifest('v1')).descriptor.digest).toBe(digestOf(MANIFEST));
      expect(front.tokenRequests.at(-1)).toEqual({ password: rotated });
    } finally {
      await configClient.close();
      await rm(dir, { recursive: true, force: true });
    }
  });
});

describe('rotated basic credentials', () => {
  it('basic credentials refused with 401 are re-read and the request retried once', async () => {
    let accepted = password;
    const registry = await startHttpServer((req, res) => {
      if (basicCredentials(req)?.password !== accepted) {
        res.writeHead(401, { 'www-authenticate': 'Basic realm="reg"' });
        res.end();
        return;
      }
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      res.end(MANIFEST);
    });
    const { state, provider } = rotatingProvider(password);
    const client = new RegistryClient({ credentials: provider, retry: { maxRetries: 0 } });
    const repo = client.repository(`${registry.host}/app`);
    try {
      await repo.fetchManifest('v1');
      accepted = rotated;
      state.current = rotated;
      expect((await repo.fetchManifest('v1')).descriptor.digest).toBe(digestOf(MANIFEST));
      expect(state.calls).toBe(2);
    } finally {
      await client.close();
      await registry.stop();
    }
  });
});
