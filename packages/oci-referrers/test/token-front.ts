import { randomBytes } from 'node:crypto';
import { basicCredentials, startHttpServer, type TestHttpServer } from './http-servers.js';

export const MANIFEST = Buffer.from(
  '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{},"layers":[]}',
);

/**
 * A registry that serves one manifest (`app:v1`) behind bearer tokens from its own `/token` endpoint, with
 * a password that a test may change (rotation) and a WWW-Authenticate header a test may rewrite.
 */
export interface TokenFront extends TestHttpServer {
  user: string;
  /** The password the token endpoint accepts now. */
  password: string;
  /** Renders the 401's WWW-Authenticate header value(s) for the token realm. */
  challenge: (realm: string) => string | string[];
  /** Every token request: the basic-auth password it came with (undefined when anonymous). */
  tokenRequests: { password?: string }[];
  /** Every manifest request: the Authorization it came with. */
  manifestRequests: (string | undefined)[];
  /** Forgets issued tokens, as a registry does when a password is rotated. */
  revokeTokens(): void;
}

export async function startTokenFront(user: string, password: string): Promise<TokenFront> {
  const tokens = new Set<string>();
  const front: Omit<TokenFront, keyof TestHttpServer> = {
    user,
    password,
    challenge: (realm) => `Bearer realm="${realm}",service="front",scope="repository:app:pull"`,
    tokenRequests: [],
    manifestRequests: [],
    revokeTokens: () => tokens.clear(),
  };
  let realm = '';
  const server = await startHttpServer((req, res) => {
    if (req.url?.startsWith('/token')) {
      const given = basicCredentials(req);
      front.tokenRequests.push({ password: given?.password });
      if (given?.user !== front.user || given.password !== front.password) {
        res.writeHead(401, { 'content-type': 'application/json' });
        res.end('{"errors":[{"code":"UNAUTHORIZED","message":"bad credentials"}]}');
        return;
      }
      const token = randomBytes(12).toString('hex');
      tokens.add(token);
      res.writeHead(200, { 'content-type': 'application/json' });
      res.end(JSON.stringify({ token, expires_in: 300 }));
      return;
    }
    front.manifestRequests.push(req.headers.authorization);
    const token = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
    if (!token || !tokens.has(token)) {
      res.writeHead(401, { 'www-authenticate': front.challenge(realm), 'content-type': 'application/json' });
      res.end('{"errors":[{"code":"UNAUTHORIZED","message":"authentication required"}]}');
      return;
    }
    res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
    res.end(MANIFEST);
  });
  realm = `${server.url}/token`;
  return Object.assign(front, server);
}
