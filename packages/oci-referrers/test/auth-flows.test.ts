import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { digestOf, RegistryClient, staticCredentials } from '../src/index.js';
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
    expect(error).toMatchObject({ code: 'PROTOCOL', status: 401 });
    expect((error as Error).message).toMatch(/answered 401 with an unreadable WWW-Authenticate header/);
    expect(front.tokenRequests).toEqual([]);
  });
});
