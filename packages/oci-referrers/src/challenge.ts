import { RegistryError, type RegistryErrorOptions } from './errors.js';

/** One `WWW-Authenticate` challenge: scheme (lower case), parameters (names lower case), or a token68. */
export interface Challenge {
  scheme: 'basic' | 'bearer' | string;
  params: Record<string, string>;
  /** The `token68` form some schemes use instead of parameters (`Negotiate YII...==`). */
  token68?: string;
}

/** A `WWW-Authenticate` header that does not follow RFC 9110's challenge grammar. */
export class InvalidChallengeError extends RegistryError<'REGISTRY_PROTOCOL'> {
  override readonly name: string = 'InvalidChallengeError';
  /** Zero-based character index in the header value where parsing stopped. */
  readonly position: number;

  constructor(
    code: 'REGISTRY_PROTOCOL',
    message: string,
    options: RegistryErrorOptions & { position: number },
  ) {
    super(code, message, options);
    this.position = options.position;
  }
}

function invalidChallenge(why: string, position: number): InvalidChallengeError {
  return new InvalidChallengeError(
    'REGISTRY_PROTOCOL',
    `the WWW-Authenticate header is not a valid challenge list (${why} at character ${position}); the registry or a proxy in front of it sent a malformed header, report it to its operator`,
    { position },
  );
}

/**
 * Parses every challenge of one or more `WWW-Authenticate` header values (RFC 9110 §11.6.1):
 * `Basic realm="x", Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"`. Scheme and
 * parameter names are case-insensitive (returned lower case); values may be tokens or quoted strings with
 * `\` escapes. No header gives []; a malformed one throws InvalidChallengeError.
 */
export function parseChallenges(header: string | readonly string[] | undefined): Challenge[] {
  const values = header === undefined ? [] : typeof header === 'string' ? [header] : header;
  return values.flatMap((value) => new ChallengeListParser(value).parse());
}

/**
 * The challenge to answer: a Bearer challenge whose realm is an http(s) URL (token flow) over Basic, over a
 * Bearer without a usable realm (answered only to report it). Other schemes are never answered.
 */
export function preferredChallenge(challenges: readonly Challenge[]): Challenge | undefined {
  const rank = (c: Challenge) =>
    c.scheme === 'bearer' && isHttpUrl(c.params.realm)
      ? 0
      : c.scheme === 'basic'
        ? 1
        : c.scheme === 'bearer'
          ? 2
          : 3;
  const usable = challenges.filter((c) => rank(c) < 3);
  return usable.sort((a, b) => rank(a) - rank(b))[0];
}

function isHttpUrl(text: string | undefined): boolean {
  if (!text) return false;
  try {
    const { protocol } = new URL(text);
    return protocol === 'http:' || protocol === 'https:';
  } catch {
    return false;
  }
}

const TCHAR = /[!#$%&'*+\-.^_`|~0-9A-Za-z]/;
const TOKEN68_CHAR = /[A-Za-z0-9\-._~+/]/;
/** Unquoted parameter values: tokens, and leniently any visible text but `,` and `"` (realm=https://a/b). */
const BARE_VALUE_CHAR = /[\x21\x23-\x2b\x2d-\x7e\x80-\uffff]/;
const QUOTED_TEXT_CHAR = /[\t\x20-\x7e\x80-\uffff]/;

/** A recursive-descent parser of one header value: `1#challenge`, empty list elements allowed. */
class ChallengeListParser {
  private pos = 0;

  constructor(private readonly text: string) {}

  parse(): Challenge[] {
    const challenges: Challenge[] = [];
    this.skipListSeparators();
    while (!this.atEnd()) {
      challenges.push(this.challenge());
      if (!this.atEnd() && this.peek() !== ',') this.fail('expected "," between challenges');
      this.skipListSeparators();
    }
    if (challenges.length === 0) this.fail('no challenge');
    return challenges;
  }

  /** `auth-scheme [ 1*SP ( token68 / #auth-param ) ]` */
  private challenge(): Challenge {
    const scheme = this.token();
    if (!scheme) this.fail('expected an auth scheme');
    const challenge: Challenge = { scheme: scheme.toLowerCase(), params: {} };
    if (!this.skipSpaces() || this.atEnd() || this.peek() === ',') return challenge;
    const token68 = this.tryToken68();
    if (token68 !== undefined) challenge.token68 = token68;
    else this.params(challenge.params);
    return challenge;
  }

  /** `#auth-param`, stopping before a comma that starts the next challenge. */
  private params(into: Record<string, string>): void {
    for (;;) {
      const name = this.token();
      if (!name) this.fail('expected a parameter name');
      this.skipSpaces();
      if (this.peek() !== '=') this.fail(`expected "=" after parameter ${JSON.stringify(name)}`);
      this.pos++;
      this.skipSpaces();
      const value = this.peek() === '"' ? this.quotedString() : this.bareValue();
      const key = name.toLowerCase();
      // RFC 9110: a parameter occurs once per challenge; a repeat is ignored rather than trusted.
      if (!Object.hasOwn(into, key)) into[key] = value;
      this.skipSpaces();
      if (this.atEnd()) return;
      if (this.peek() !== ',') this.fail('expected "," after a parameter');
      const beforeComma = this.pos;
      this.skipListSeparators();
      if (this.atEnd() || !this.paramAhead()) {
        this.pos = beforeComma;
        return;
      }
    }
  }

  /** Whether `token BWS "="` follows (a parameter), rather than a scheme that starts a new challenge. */
  private paramAhead(): boolean {
    const saved = this.pos;
    let isParam = this.token() !== '';
    this.skipSpaces();
    isParam &&= this.peek() === '=';
    this.pos = saved;
    return isParam;
  }

  /** `token68` when it is all that follows up to the end or the next comma; else nothing consumed. */
  private tryToken68(): string | undefined {
    const start = this.pos;
    while (!this.atEnd() && TOKEN68_CHAR.test(this.peek())) this.pos++;
    if (this.pos === start) return undefined;
    while (this.peek() === '=') this.pos++;
    const end = this.pos;
    this.skipSpaces();
    if (this.atEnd() || this.peek() === ',') return this.text.slice(start, end);
    this.pos = start;
    return undefined;
  }

  private quotedString(): string {
    this.pos++; // opening quote
    let value = '';
    for (;;) {
      if (this.atEnd()) this.fail('unterminated quoted string');
      const c = this.peek();
      this.pos++;
      if (c === '"') return value;
      if (c === '\\') {
        if (this.atEnd()) this.fail('unterminated quoted string');
        value += this.peek();
        this.pos++;
      } else if (QUOTED_TEXT_CHAR.test(c)) {
        value += c;
      } else {
        this.pos--;
        this.fail('control character in a quoted string');
      }
    }
  }

  private bareValue(): string {
    const start = this.pos;
    while (!this.atEnd() && BARE_VALUE_CHAR.test(this.peek())) this.pos++;
    if (this.pos === start) this.fail('expected a parameter value');
    return this.text.slice(start, this.pos);
  }

  private token(): string {
    const start = this.pos;
    while (!this.atEnd() && TCHAR.test(this.peek())) this.pos++;
    return this.text.slice(start, this.pos);
  }

  /** Skips spaces and tabs; whether there were any. */
  private skipSpaces(): boolean {
    const start = this.pos;
    while (this.peek() === ' ' || this.peek() === '\t') this.pos++;
    return this.pos > start;
  }

  private skipListSeparators(): void {
    while (this.peek() === ' ' || this.peek() === '\t' || this.peek() === ',') this.pos++;
  }

  private peek(): string {
    return this.text.charAt(this.pos);
  }

  private atEnd(): boolean {
    return this.pos >= this.text.length;
  }

  private fail(why: string): never {
    throw invalidChallenge(why, this.pos);
  }
}
