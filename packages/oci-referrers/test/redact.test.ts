import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { redactUrl } from '../src/index.js';

describe('redactUrl', () => {
  it('keeps scheme, host and path and replaces a query by ?<redacted>', () => {
    expect(
      redactUrl(
        'https://bucket.s3.amazonaws.com/docker/blobs/sha256/ab/data?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=deadbeef',
      ),
    ).toBe('https://bucket.s3.amazonaws.com/docker/blobs/sha256/ab/data?<redacted>');
    expect(redactUrl(new URL('http://127.0.0.1:5000/v2/a/blobs/uploads/x?_state=abc&digest=sha256:1'))).toBe(
      'http://127.0.0.1:5000/v2/a/blobs/uploads/x?<redacted>',
    );
  });

  it('leaves a URL without query as it is, and drops user info and fragment', () => {
    expect(redactUrl('https://ghcr.io/v2/org/app/manifests/v1')).toBe(
      'https://ghcr.io/v2/org/app/manifests/v1',
    );
    expect(redactUrl('https://user:hunter2@example.com/p#frag')).toBe('https://example.com/p');
  });

  it('cuts text that is not a valid URL the same way', () => {
    expect(redactUrl('/relative/path?sig=1')).toBe('/relative/path?<redacted>');
    expect(redactUrl('http://us er:pw@[bad/p?sig=1')).toBe('http://[bad/p?<redacted>');
    expect(redactUrl('no query at all')).toBe('no query at all');
  });

  it('never shows a query value or user info (random URLs)', () => {
    const secret = fc.stringMatching(/^[A-Za-z0-9]{12,24}$/);
    fc.assert(
      fc.property(fc.webUrl({ withQueryParameters: true }), secret, (url, s) => {
        const signed = `${url}${url.includes('?') ? '&' : '?'}X-Amz-Signature=${s}`;
        const withUser = signed.replace('://', `://user:${s}@`);
        for (const text of [signed, withUser]) {
          const shown = redactUrl(text);
          expect(shown).not.toContain(s);
          expect(shown.endsWith('?<redacted>')).toBe(true);
        }
      }),
      { numRuns: 300 },
    );
  });
});
