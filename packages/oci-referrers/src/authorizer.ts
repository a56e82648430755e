import { type Dispatcher, request } from 'undici';
import { basicAuthorization, parseTokenResponse, TokenCache, tokenRequest } from './auth.js';
import { type Challenge, parseChallenges, preferredChallenge } from './challenge.js';
import { CredentialCache } from './credential-cache.js';
import type { Credential, CredentialsProvider } from './credentials.js';
import { untilAborted } from './deadline.js';
import { codeForResponse, parseErrorBody, RegistryError } from './errors.js';
import { mapFailure } from './http-failure.js';
import type { HttpRequest, TimeoutOptions } from './http-request.js';
import {
  discardBody,
  type HttpResponse,
  headerValues,
  readLimited,
  SKIPPED_BODY_LIMIT,
} from './http-response.js';
import { redactUrl } from './redact.js';

export interface AuthorizerOptions {
  credentials: CredentialsProvider | undefined;
  /** Token requests go through the transport's dispatcher, with its timeouts and user agent. */
  dispatcher: Dispatcher;
  timeouts: Required<Pick<TimeoutOptions, 'headersMs' | 'bodyStallMs'>>;
  userAgent: string;
}

/**
 * The Authorization header of registry requests: anonymous, basic, or bearer tokens cached per scope,
 * fetched from the token server a 401's challenge names. Holds the credentials provider's answers.
 */
export class Authorizer {
  private readonly tokens = new TokenCache();
  /** Registries that asked for basic auth: send it up front next time. */
  private readonly basicHosts = new Set<string>();
  private readonly credentials: CredentialCache;

  constructor(private readonly options: AuthorizerOptions) {
    this.credentials = new CredentialCache(options.credentials);
  }

  /** Generation of the credentials cached for `registry` (0 when none): read it before sending a request. */
  generation(registry: string): number {
    return this.credentials.generation(registry);
  }

  /**
   * What a request carried (credentials of `generation`) was refused: its token is dropped and the
   * credentials provider asked again, unless another request did so meanwhile.
   */
  async refused(req: HttpRequest, generation: number): Promise<void> {
    this.tokens.delete(req.registry, req.scopes);
    await this.whileRequestLasts(req, this.credentials.refresh(req.registry, generation));
  }

  /**
   * The challenge of a 401 that this client answers (Bearer over Basic), its body discarded; undefined (body
   * left for the error) when it offers nothing usable. A malformed header is a REGISTRY_PROTOCOL error.
   */
  async challengeToAnswer(req: HttpRequest, res: HttpResponse): Promise<Challenge | undefined> {
    let challenges: Challenge[];
    try {
      challenges = parseChallenges(headerValues(res, 'www-authenticate'));
    } catch (error) {
      await discardBody(res, SKIPPED_BODY_LIMIT);
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `${req.what}: ${req.method} ${redactUrl(res.url)} answered 401 with an unreadable WWW-Authenticate header: ${(error as Error).message}`,
        { status: 401, method: req.method, url: redactUrl(res.url), cause: error },
      );
    }
    const challenge = preferredChallenge(challenges);
    if (challenge) await discardBody(res, SKIPPED_BODY_LIMIT);
    return challenge;
  }

  /**
   * The Authorization a request can carry before any challenge: a cached token for its scopes, or basic
   * credentials for a registry that asked for them; with the credential generation it came from.
   */
  async cachedAuthorization(req: HttpRequest): Promise<{ header: string; generation: number } | undefined> {
    const token = this.tokens.get(req.registry, req.scopes);
    if (token) return { header: `Bearer ${token}`, generation: this.credentials.generation(req.registry) };
    if (!this.basicHosts.has(req.registry)) return undefined;
    const { credential, generation } = await this.whileRequestLasts(req, this.credentials.get(req.registry));
    const header = credential && basicAuthorization(credential);
    return header ? { header, generation } : undefined;
  }

  /**
   * The Authorization that answers `challenge`. A token server that refuses credentials read before this
   * request (generation <= `seen`) gets one more try with the provider's fresh answer.
   */
  async authorize(req: HttpRequest, challenge: Challenge, seen: number): Promise<string | undefined> {
    const { credential, generation } = await this.whileRequestLasts(req, this.credentials.get(req.registry));
    if (challenge.scheme === 'basic') {
      this.basicHosts.add(req.registry);
      return credential ? basicAuthorization(credential) : undefined;
    }
    if (challenge.scheme !== 'bearer' || !challenge.params.realm) return undefined;
    this.tokens.delete(req.registry, req.scopes);
    try {
      return `Bearer ${await this.fetchToken(req, challenge, credential)}`;
    } catch (error) {
      const refused = error instanceof RegistryError && (error.status === 401 || error.status === 403);
      if (!refused || generation > seen) throw error;
      const fresh = await this.whileRequestLasts(req, this.credentials.refresh(req.registry, generation));
      return `Bearer ${await this.fetchToken(req, challenge, fresh.credential)}`;
    }
  }

  /**
   * The credentials provider's answer, given up as soon as the request aborts (a credential helper may
   * hang). The question itself goes on: other requests may be waiting for the same answer.
   */
  private whileRequestLasts<T>(req: HttpRequest, answer: Promise<T>): Promise<T> {
    return req.signal ? untilAborted(answer, req.signal) : answer;
  }

  private async fetchToken(
    req: HttpRequest,
    challenge: Challenge,
    credential: Credential | undefined,
  ): Promise<string> {
    let spec: ReturnType<typeof tokenRequest>;
    try {
      spec = tokenRequest(challenge, req.scopes, credential);
    } catch {
      throw new RegistryError(
        'REGISTRY_PROTOCOL',
        `${req.what}: the registry sent a bearer challenge with an invalid realm`,
      );
    }
    const where = `token server ${redactUrl(spec.url)}`;
    let res: Dispatcher.ResponseData;
    try {
      res = await request(spec.url, {
        dispatcher: this.options.dispatcher,
        method: spec.method,
        headers: { ...spec.headers, 'user-agent': this.options.userAgent },
        body: spec.body,
        headersTimeout: this.options.timeouts.headersMs,
        bodyTimeout: this.options.timeouts.bodyStallMs,
        signal: req.signal,
      });
    } catch (error) {
      throw mapFailure(error, spec.method, spec.url);
    }
    let text: string;
    try {
      text = (await readLimited(res.body, 1 << 20)).toString();
    } catch (error) {
      throw mapFailure(error, spec.method, spec.url);
    }
    if (res.statusCode !== 200) {
      const body = parseErrorBody(text);
      const code =
        res.statusCode === 401
          ? 'REGISTRY_UNAUTHORIZED'
          : res.statusCode === 403
            ? 'REGISTRY_DENIED'
            : codeForResponse(res.statusCode, body.code);
      throw new RegistryError(
        code,
        `${req.what}: ${where} refused a token (HTTP ${res.statusCode}${body.code ? ` ${body.code}` : ''})${credential ? '; check the credentials for this registry' : '; this registry needs credentials'}`,
        {
          status: res.statusCode,
          registryCode: body.code,
          registryMessage: body.message,
          url: redactUrl(spec.url),
        },
      );
    }
    const parsed = parseTokenResponse(text);
    if (!parsed)
      throw new RegistryError('REGISTRY_PROTOCOL', `${req.what}: ${where} answered without a token`);
    this.tokens.set(req.registry, req.scopes, parsed.token, parsed.expiresIn);
    return parsed.token;
  }
}
