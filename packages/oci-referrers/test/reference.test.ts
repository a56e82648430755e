import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mergeScopes } from '../src/auth.js';
import { parseContentRange } from '../src/blob-range.js';
import {
  formatReference,
  hostPlatform,
  type ImageIndex,
  InvalidReferenceError,
  MediaType,
  parseChallenges,
  parsePlatform,
  parseReference,
  RegistryError,
  selectPlatform,
} from '../src/index.js';

const hex = 'a'.repeat(64);

describe('parseReference', () => {
  it.each([
    ['alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['alpine:3.20', { registry: 'docker.io', repository: 'library/alpine', tag: '3.20' }],
    ['docker.io/alpine', { registry: 'docker.io', repository: 'library/alpine', tag: 'latest' }],
    ['index.docker.io/user/app:v1', { registry: 'docker.io', repository: 'user/app', tag: 'v1' }],
    ['user/app', { registry: 'docker.io', repository: 'user/app', tag: 'latest' }],
    ['ghcr.io/org/team/app:1.0', { registry: 'ghcr.io', repository: 'org/team/app', tag: '1.0' }],
    ['localhost/app', { registry: 'localhost', repository: 'app', tag: 'latest' }],
    ['127.0.0.1:5000/a/b:c', { registry: '127.0.0.1:5000', repository: 'a/b', tag: 'c' }],
    ['reg:5000/app', { registry: 'reg:5000', repository: 'app', tag: 'latest' }],
    [`app@sha256:${hex}`, { registry: 'docker.io', repository: 'library/app', digest: `sha256:${hex}` }],
    [
      `r.io:443/app:v2@sha256:${hex}`,
      { registry: 'r.io:443', repository: 'app', tag: 'v2', digest: `sha256:${hex}` },
    ],
    ['[::1]:5000/app', { registry: '[::1]:5000', repository: 'app', tag: 'latest' }],
  ])('%s', (input, expected) => {
    expect(parseReference(input)).toEqual(expected);
  });

  it.each([
    '',
    'UPPER/app',
    'app:',
    'app:-tag',
    'a//b',
    '/app',
    'app/',
    'app@sha256:abc',
    `app@md5:${hex}`,
    'a..b',
    'r.io/app:t:t',
    `r.io/${'a'.repeat(256)}`,
    'bad host!/app',
  ])('rejects %j with INVALID_REFERENCE quoting it', (input) => {
    const error = (() => {
      try {
        parseReference(input);
      } catch (e) {
        return e;
      }
    })();
    expect(error).toBeInstanceOf(InvalidReferenceError);
    expect(error).toBeInstanceOf(RegistryError);
    expect((error as RegistryError).code).toBe('REGISTRY_INVALID_REFERENCE');
    expect((error as Error).message).toContain(JSON.stringify(input));
  });

  it('format(parse(x)) is a fixed point for generated references', () => {
    const component = fc.stringMatching(/^[a-z0-9]+(?:[._-][a-z0-9]+)*$/).filter((s) => s.length <= 30);
    const ref = fc.record({
      registry: fc.constantFrom('docker.io', 'ghcr.io', '127.0.0.1:5000', 'localhost:1234', 'my.reg'),
      path: fc.array(component, { minLength: 1, maxLength: 3 }),
      tag: fc.option(fc.stringMatching(/^\w[\w.-]{0,20}$/), { nil: undefined }),
      digest: fc.option(fc.stringMatching(/^[a-f0-9]{64}$/), { nil: undefined }),
    });
    fc.assert(
      fc.property(ref, ({ registry, path, tag, digest }) => {
        const text = `${registry}/${path.join('/')}${tag ? `:${tag}` : ''}${digest ? `@sha256:${digest}` : ''}`;
        const parsed = parseReference(text);
        expect(parseReference(formatReference(parsed))).toEqual(parsed);
        if (digest) expect(parsed.digest).toBe(`sha256:${digest}`);
        expect(parsed.tag).toBe(tag ?? (digest ? undefined : 'latest'));
      }),
    );
  });

  it('never throws anything but InvalidReferenceError', () => {
    fc.assert(
      fc.property(fc.string(), (s) => {
        try {
          parseReference(s);
        } catch (e) {
          expect(e).toBeInstanceOf(InvalidReferenceError);
        }
      }),
      { numRuns: 2000 },
    );
  });
});

describe('platforms', () => {
  const index: ImageIndex = {
    schemaVersion: 2,
    manifests: [
      {
        mediaType: MediaType.OciManifest,
        digest: `sha256:${'1'.repeat(64)}`,
        size: 1,
        platform: { os: 'linux', architecture: 'amd64' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: `sha256:${'2'.repeat(64)}`,
        size: 1,
        platform: { os: 'linux', architecture: 'arm', variant: 'v6' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: `sha256:${'3'.repeat(64)}`,
        size: 1,
        platform: { os: 'linux', architecture: 'arm', variant: 'v7' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: `sha256:${'4'.repeat(64)}`,
        size: 1,
        platform: { os: 'linux', architecture: 'arm64' },
      },
      {
        mediaType: MediaType.OciManifest,
        digest: `sha256:${'5'.repeat(64)}`,
        size: 1,
        artifactType: 'application/vnd.amazon.soci.index.v2+json',
        platform: { os: 'linux', architecture: 's390x' },
      },
    ],
  };

  it('selects by os/arch/variant, treats arm64 as v8, skips artifacts', () => {
    expect(selectPlatform(index, parsePlatform('linux/amd64')).digest).toMatch(/1{64}$/);
    expect(selectPlatform(index, parsePlatform('linux/arm/v7')).digest).toMatch(/3{64}$/);
    expect(selectPlatform(index, parsePlatform('linux/arm/v6')).digest).toMatch(/2{64}$/);
    expect(selectPlatform(index, parsePlatform('linux/arm64/v8')).digest).toMatch(/4{64}$/);
    expect(() => selectPlatform(index, parsePlatform('linux/s390x'))).toThrow(
      expect.objectContaining({ code: 'REGISTRY_PLATFORM_NOT_FOUND' }),
    );
  });

  it('maps the host to OCI names', () => {
    const host = hostPlatform();
    expect(host.os).toBe('linux');
    expect(host.architecture).toBe(
      { x64: 'amd64', arm64: 'arm64' }[process.arch as string] ?? host.architecture,
    );
    if (process.arch === 'x64') expect(selectPlatform(index).digest).toMatch(/1{64}$/);
  });
});

describe('protocol helpers', () => {
  it('parses WWW-Authenticate challenges', () => {
    expect(
      parseChallenges(
        'Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull,push"',
      ),
    ).toEqual([
      {
        scheme: 'bearer',
        params: {
          realm: 'https://auth.example/token',
          service: 'registry.example',
          scope: 'repository:a/b:pull,push',
        },
      },
    ]);
    expect(parseChallenges('Basic realm="Registry Realm"')).toEqual([
      {
        scheme: 'basic',
        params: { realm: 'Registry Realm' },
      },
    ]);
  });

  it('merges scopes per resource', () => {
    expect(
      mergeScopes(['repository:a:pull', 'repository:b:pull', 'repository:a:push', 'repository:a:pull']),
    ).toEqual(['repository:a:pull,push', 'repository:b:pull']);
  });

  it('parses Content-Range', () => {
    expect(parseContentRange('bytes 5-9/100')).toEqual({ first: 5, last: 9, total: 100 });
    expect(parseContentRange('bytes 5-9/*')).toEqual({ first: 5, last: 9 });
    expect(parseContentRange('bytes 9-5/100')).toBeUndefined();
    expect(parseContentRange(undefined)).toBeUndefined();
  });
});
