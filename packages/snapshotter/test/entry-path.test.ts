// layerPath's fast path (a name already plain is returned as it is) against the rule it keeps:
// drop empty and `.` components, refuse `..` and NUL, for names built from every kind of part.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { layerPath } from '../src/unpack/entry-path.js';
import { UnpackError } from '../src/unpack/errors.js';

/** The rule, written the slow and obvious way. */
function reference(name: string): string | 'unsafe' {
  if (name.includes('\0')) return 'unsafe';
  const parts = name.split('/').filter((p) => p !== '' && p !== '.');
  return parts.includes('..') ? 'unsafe' : parts.join('/');
}

const part = fc.constantFrom('', '.', '..', '...', '.a', 'a.', 'a..b', 'usr', '.wh.x', 'b c', 'x\0y', 'é');
const name = fc.array(part, { maxLength: 6 }).map((parts) => parts.join('/'));

describe('layerPath', () => {
  it('keeps the rule for any name', () => {
    fc.assert(
      fc.property(name, (n) => {
        const expected = reference(n);
        if (expected === 'unsafe') {
          expect(() => layerPath(n, 'tar entry')).toThrow(UnpackError);
        } else {
          expect(layerPath(n, 'tar entry')).toBe(expected);
        }
      }),
      { numRuns: 3000 },
    );
  });

  it('names what was wrong', () => {
    expect(() => layerPath('a/../b', 'tar entry')).toThrow(/tar entry "a\/..\/b" has a ".." component/);
    expect(() => layerPath('a\0', 'tar entry')).toThrow(/contains a NUL byte/);
    expect(layerPath('/', 'tar entry')).toBe('');
    expect(layerPath('./usr//lib/', 'tar entry')).toBe('usr/lib');
  });
});
