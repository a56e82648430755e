import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  type Challenge,
  InvalidChallengeError,
  parseChallenges,
  preferredChallenge,
  RegistryError,
} from '../src/index.js';

describe('parseChallenges', () => {
  it('reads several challenges of one header, with parameters after each', () => {
    expect(
      parseChallenges(
        'Basic realm="x", Bearer realm="https://auth/token",service="reg",scope="repository:a:pull"',
      ),
    ).toEqual([
      { scheme: 'basic', params: { realm: 'x' } },
      {
        scheme: 'bearer',
        params: { realm: 'https://auth/token', service: 'reg', scope: 'repository:a:pull' },
      },
    ]);
  });

  it('reads challenges spread over several header values', () => {
    expect(parseChallenges(['Basic realm="a"', 'bearer realm="https://b/t", service=reg'])).toEqual([
      { scheme: 'basic', params: { realm: 'a' } },
      { scheme: 'bearer', params: { realm: 'https://b/t', service: 'reg' } },
    ]);
  });

  it('unescapes quoted strings that hold commas, quotes and backslashes; names are case-insensitive', () => {
    expect(
      parseChallenges(
        'BEARER Realm="https://a/t?x=1,2", error="say \\"hi\\", \\\\ok", Scope=repository:a:pull,push',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: { realm: 'https://a/t?x=1,2', error: 'say "hi", \\ok', scope: 'repository:a:pull' },
      },
      // `push` after the comma is no `name=value`: it starts a new (parameterless) challenge.
      { scheme: 'push', params: {} },
    ]);
  });

  it('reads unquoted values, token68, empty list elements and spaces around "="', () => {
    expect(parseChallenges(' , Negotiate YIIB+/x==,, Basic realm = abc , charset="UTF-8",')).toEqual([
      { scheme: 'negotiate', params: {}, token68: 'YIIB+/x==' },
      { scheme: 'basic', params: { realm: 'abc', charset: 'UTF-8' } },
    ]);
    expect(parseChallenges(undefined)).toEqual([]);
    expect(parseChallenges([])).toEqual([]);
    expect(parseChallenges('Basic realm="a", Bearer realm="https://b"')[0]?.scheme).toBe('basic');
  });

  it('a malformed header is an InvalidChallengeError (code REGISTRY_PROTOCOL) that says where', () => {
    for (const [garbage, position] of [
      ['', 0],
      ['=abc', 0],
      ['"Bearer"', 0],
      ['Bearer realm="unterminated', 26],
      ['Bearer realm="a", service=', 26],
      ['Bearer realm="a" service="b"', 17],
      ['Bearer realm="a"; service="b"', 16],
      ['Basic realm="a\u0001"', 14],
      ['Bearer realm="a", ,=x', 19],
    ] as const) {
      const error = (() => {
        try {
          parseChallenges(garbage);
        } catch (e) {
          return e;
        }
        return undefined;
      })();
      expect(error, garbage).toBeInstanceOf(InvalidChallengeError);
      expect(error).toBeInstanceOf(RegistryError);
      expect(error).toMatchObject({ code: 'REGISTRY_PROTOCOL', position });
      expect((error as Error).message).toContain('malformed header');
    }
  });
});

describe('preferredChallenge', () => {
  const basic: Challenge = { scheme: 'basic', params: { realm: 'r' } };
  const bearer: Challenge = { scheme: 'bearer', params: { realm: 'https://auth.example/token' } };
  const badBearer: Challenge = { scheme: 'bearer', params: { realm: 'not a url' } };
  const negotiate: Challenge = { scheme: 'negotiate', params: {}, token68: 'abc' };

  it('takes Bearer with an http(s) realm over Basic, Basic over a Bearer it cannot use, never others', () => {
    expect(preferredChallenge([basic, bearer])).toBe(bearer);
    expect(preferredChallenge([negotiate, bearer, basic])).toBe(bearer);
    expect(preferredChallenge([badBearer, basic])).toBe(basic);
    expect(preferredChallenge([{ scheme: 'bearer', params: { realm: 'file:///etc/passwd' } }, basic])).toBe(
      basic,
    );
    expect(preferredChallenge([badBearer])).toBe(badBearer);
    expect(preferredChallenge([negotiate])).toBeUndefined();
    expect(preferredChallenge([])).toBeUndefined();
  });
});

// ---- property: any challenge list rendered in any legal way parses back ----

const tchars = "!#$%&'*+-.^_`|~0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ".split('');
const token = fc.array(fc.constantFrom(...tchars), { minLength: 1, maxLength: 8 }).map((a) => a.join(''));
const token68 = fc
  .tuple(fc.stringMatching(/^[A-Za-z0-9\-._~+/]{1,12}$/), fc.constantFrom('', '=', '=='))
  .map(([body, pad]) => body + pad);
/** Any visible text, including the characters that need quoting: `"`, `\`, `,`, `=`, spaces. */
const value = fc.string({ unit: fc.constantFrom(...'ab ,="\\=:/?;\tZ9é'.split('')), maxLength: 12 });
const ows = fc.constantFrom('', ' ', '  ', '\t');

type Param = { name: string; value: string; quoted: boolean; spaceBefore: string; spaceAfter: string };
const param = fc.record({ name: token, value, quoted: fc.boolean(), spaceBefore: ows, spaceAfter: ows });
const challenge = fc.record({
  scheme: token,
  body: fc.oneof(
    fc.constant({ kind: 'none' as const }),
    token68.map((t) => ({ kind: 'token68' as const, t })),
    fc
      .uniqueArray(param, { minLength: 1, maxLength: 4, selector: (p) => p.name.toLowerCase() })
      .map((params) => ({ kind: 'params' as const, params })),
  ),
});

const isToken = (s: string) => s.length > 0 && [...s].every((c) => tchars.includes(c));
const quote = (s: string) => `"${s.replace(/["\\]/g, (c) => `\\${c}`)}"`;
const renderParam = (p: Param) =>
  `${p.name}${p.spaceBefore}=${p.spaceAfter}${p.quoted || !isToken(p.value) ? quote(p.value) : p.value}`;

type ChallengeSpec = {
  scheme: string;
  body: { kind: 'none' } | { kind: 'token68'; t: string } | { kind: 'params'; params: Param[] };
};

function render(c: ChallengeSpec): string {
  if (c.body.kind === 'none') return c.scheme;
  if (c.body.kind === 'token68') return `${c.scheme} ${c.body.t}`;
  return `${c.scheme} ${c.body.params.map(renderParam).join(', ')}`;
}

function expected(c: ChallengeSpec): Challenge {
  const params =
    c.body.kind === 'params'
      ? Object.fromEntries(c.body.params.map((p) => [p.name.toLowerCase(), p.value]))
      : {};
  return {
    scheme: c.scheme.toLowerCase(),
    params,
    ...(c.body.kind === 'token68' ? { token68: c.body.t } : {}),
  };
}

describe('parseChallenges (property)', () => {
  it('parses back any rendered list of challenges, in one header or split over several', () => {
    fc.assert(
      fc.property(
        fc.array(challenge, { minLength: 1, maxLength: 5 }),
        fc.array(fc.boolean(), { minLength: 5, maxLength: 5 }),
        fc.constantFrom(', ', ',', ' ,  ', ', , '),
        (challenges, splits, separator) => {
          const headers: string[] = [];
          let current: string[] = [];
          challenges.forEach((c, i) => {
            current.push(render(c));
            if (splits[i]) {
              headers.push(current.join(separator));
              current = [];
            }
          });
          if (current.length) headers.push(current.join(separator));
          expect(parseChallenges(headers)).toEqual(challenges.map(expected));
        },
      ),
      { numRuns: 500 },
    );
  });

  it('never throws anything but InvalidChallengeError, and never loops, on arbitrary text', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: fc.constantFrom(...'Bb ,="\\=a\t\u0000r;'.split('')), maxLength: 30 }),
        (text) => {
          try {
            parseChallenges(text);
          } catch (e) {
            expect(e).toBeInstanceOf(InvalidChallengeError);
          }
        },
      ),
      { numRuns: 1000 },
    );
  });
});
