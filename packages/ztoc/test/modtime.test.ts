import fc from 'fast-check';
import { expect, it } from 'vitest';
import { formatModTime, parseModTime } from '../src/modtime.js';

it('formats like Go RFC 3339 with nanoseconds (checked against Date for whole milliseconds)', () => {
  fc.assert(
    fc.property(fc.integer({ min: -62_135_596_800_000, max: 253_402_300_799_999 }), (ms) => {
      const seconds = Math.floor(ms / 1000);
      const iso = new Date(ms).toISOString(); // always .sss
      const expected = iso.replace(/\.(\d{3})Z$/, (_, f: string) =>
        f === '000' ? 'Z' : `.${f.replace(/0+$/, '')}Z`,
      );
      expect(formatModTime(seconds, (ms - seconds * 1000) * 1e6)).toBe(expected);
    }),
  );
});

it('round-trips seconds and nanoseconds', () => {
  fc.assert(
    fc.property(fc.integer({ min: -1e11, max: 1e11 }), fc.integer({ min: 0, max: 999_999_999 }), (s, ns) => {
      expect(parseModTime(formatModTime(s, ns))).toEqual({ seconds: s, nanos: ns });
    }),
  );
  expect(formatModTime(1234567890, 123456789)).toBe('2009-02-13T23:31:30.123456789Z');
  expect(formatModTime(0, 500_000_000)).toBe('1970-01-01T00:00:00.5Z');
  expect(formatModTime(-1, -500_000_000)).toBe('1969-12-31T23:59:58.5Z');
  expect(parseModTime('2024-01-01T02:00:00+02:00')).toEqual({ seconds: 1704067200, nanos: 0 });
});
