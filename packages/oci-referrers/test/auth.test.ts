import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  pushImage,
  startRegistry,
  startTokenAuthProxy,
  type TestRegistry,
  type TokenAuthProxy,
} from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dockerConfigCredentials, RegistryClient, RegistryError, staticCredentials } from '../src/index.js';

const user = 'soci-user';
const password = 'S3cret-pa55-7f2c';

/** Checks that nothing derived from a secret is visible anywhere in an error. */
function expectNoSecrets(error: unknown, secrets: string[]): void {
  expect(error).toBeInstanceOf(RegistryError);
  const e = error as RegistryError;
  const visible = [e.message, e.stack ?? '', JSON.stringify(e), String(e.registryMessage ?? '')].join('\n');
  for (const s of secrets) {
    expect(visible).not.toContain(s);
    expect(visible).not.toContain(Buffer.from(`${user}:${s}`).toString('base64'));
  }
}

describe('basic auth (docker-registry with htpasswd)', () => {
  let registry: TestRegistry;
  let digest: string;
  let tmp: string;

  beforeAll(async () => {
    registry = await startRegistry({ htpasswd: { user, password } });
    const image = await pushImage({
      host: registry.host,
      repository: 'private/app',
      tag: 'v1',
      layers: [{ f: 'x' }],
      credentials: { user, password },
    });
    digest = image.manifestDigest;
    await image.cleanup();
    tmp = await mkdtemp(join(tmpdir(), 'soci-auth-'));
  });
  afterAll(async () => {
    await registry?.stop();
    await rm(tmp, { recursive: true, force: true });
  });

  it('reads with the right credentials; none or wrong ones give UNAUTHORIZED without the secret', async () => {
    const good = new RegistryClient({
      credentials: staticCredentials({ [registry.host]: { username: user, password } }),
    });
    expect((await good.repository(`${registry.host}/private/app`).resolve('v1')).digest).toBe(digest);
    await good.close();

    const anonymous = new RegistryClient();
    await expect(anonymous.repository(`${registry.host}/private/app`).resolve('v1')).rejects.toMatchObject({
      code: 'REGISTRY_UNAUTHORIZED',
      status: 401,
    });
    await anonymous.close();

    const wrongPassword = 'Wrong-pa55-d00d';
    const bad = new RegistryClient({
      credentials: staticCredentials({ [registry.host]: { username: user, password: wrongPassword } }),
    });
    const error = await bad
      .repository(`${registry.host}/private/app`)
      .fetchManifest('v1')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', status: 401 });
    expectNoSecrets(error, [wrongPassword, password]);
    await bad.close();
  });

  it('takes credentials from config.json: base64 auths, credHelpers and credsStore executables', async () => {
    const auths = join(tmp, 'auths.json');
    await writeFile(
      auths,
      JSON.stringify({
        auths: {
          [`http://${registry.host}/v2/`]: { auth: Buffer.from(`${user}:${password}`).toString('base64') },
        },
      }),
    );
    const helperDir = join(tmp, 'bin');
    const { mkdir } = await import('node:fs/promises');
    await mkdir(helperDir, { recursive: true });
    // A credential helper that knows one host, as docker-credential-* programs do.
    const helper = join(helperDir, 'docker-credential-soci-test');
    await writeFile(
      helper,
      `#!/bin/sh\nread host\nif [ "$1" = get ] && [ "$host" = "${registry.host}" ]; then\n` +
        `  printf '{"ServerURL":"%s","Username":"${user}","Secret":"${password}"}' "$host"\nelse\n` +
        '  echo "credentials not found in native keychain"; exit 1\nfi\n',
    );
    await chmod(helper, 0o755);
    const helpers = join(tmp, 'helpers.json');
    await writeFile(helpers, JSON.stringify({ credHelpers: { [registry.host]: 'soci-test' } }));
    const store = join(tmp, 'store.json');
    await writeFile(store, JSON.stringify({ auths: { [registry.host]: {} }, credsStore: 'soci-test' }));
    const missingHelper = join(tmp, 'missing.json');
    await writeFile(missingHelper, JSON.stringify({ credHelpers: { [registry.host]: 'not-installed' } }));

    const oldPath = process.env.PATH;
    process.env.PATH = `${helperDir}:${oldPath}`;
    try {
      for (const path of [auths, helpers, store]) {
        const client = new RegistryClient({ credentials: dockerConfigCredentials({ path }) });
        expect((await client.repository(`${registry.host}/private/app`).resolve('v1')).digest).toBe(digest);
        await client.close();
      }
      const provider = dockerConfigCredentials({ path: store });
      expect(await provider('other.example:5000')).toBeUndefined();
      const broken = new RegistryClient({ credentials: dockerConfigCredentials({ path: missingHelper }) });
      const error = await broken
        .repository(`${registry.host}/private/app`)
        .resolve('v1')
        .catch((e: unknown) => e);
      expect(error).toMatchObject({ code: 'REGISTRY_CREDENTIALS' });
      expect((error as Error).message).toContain('docker-credential-not-installed');
      await broken.close();
      expect(
        await dockerConfigCredentials({ path: join(tmp, 'absent.json') })(registry.host),
      ).toBeUndefined();
    } finally {
      process.env.PATH = oldPath;
    }
  });
});

describe('bearer tokens (token server in front of docker-registry)', () => {
  let registry: TestRegistry;
  let proxy: TokenAuthProxy;

  beforeAll(async () => {
    registry = await startRegistry();
    const image = await pushImage({
      host: registry.host,
      repository: 'team/app',
      tag: 'v1',
      layers: [{ f: 'y' }],
    });
    await image.cleanup();
    proxy = await startTokenAuthProxy(registry, { credentials: { user, password } });
  });
  afterAll(async () => {
    await proxy?.stop();
    await registry?.stop();
  });

  it('gets a token per scope with basic auth, caches it, and asks for push scope when pushing', async () => {
    const client = new RegistryClient({
      credentials: staticCredentials({ [proxy.host]: { username: user, password } }),
    });
    const repo = client.repository(`${proxy.host}/team/app`);
    const desc = await repo.resolve('v1');
    await repo.fetchManifest(desc);
    await repo.fetchManifest('v1');
    expect(proxy.tokenRequests).toEqual([
      { scopes: ['repository:team/app:pull'], user, service: 'soci-test-registry' },
    ]);
    const pushed = await repo.pushBlob(Buffer.from('pushed through a token'));
    expect(proxy.tokenRequests.map((r) => r.scopes)).toContainEqual(['repository:team/app:pull,push']);
    const other = client.repository(`${proxy.host}/team/other`);
    expect(await other.mountBlob(pushed, 'team/app')).toBe(true);
    expect(proxy.tokenRequests.map((r) => r.scopes)).toContainEqual([
      'repository:team/other:pull,push',
      'repository:team/app:pull',
    ]);
    await client.close();
  });

  it('a refused token is UNAUTHORIZED and neither password nor token shows in the error', async () => {
    const wrong = 'Not-the-pa55word';
    const client = new RegistryClient({
      credentials: staticCredentials({ [proxy.host]: { username: user, password: wrong } }),
    });
    const error = await client
      .repository(`${proxy.host}/team/app`)
      .resolve('v1')
      .catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'REGISTRY_UNAUTHORIZED', status: 401 });
    expectNoSecrets(error, [wrong, password]);
    await client.close();
  });

  it('anonymous clients get anonymous tokens from a server that allows them', async () => {
    const open = await startTokenAuthProxy(registry);
    const client = new RegistryClient();
    try {
      expect((await client.repository(`${open.host}/team/app`).resolve('v1')).mediaType).toContain(
        'manifest',
      );
      expect(open.tokenRequests[0]?.user).toBeUndefined();
    } finally {
      await client.close();
      await open.stop();
    }
  });
});
