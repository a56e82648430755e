import { codesOf, findCode, isSociError, SociError } from '@soci-ts/errors';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { errnoOf, LazyFsError, type LazyFsErrorCode } from '../src/index.js';

/** The errno each code reaches a FUSE reader with (Linux numbers). */
const EXPECTED_ERRNO = {
  LAZYFS_SPAN_FETCH_FAILED: 5,
  LAZYFS_SPAN_VERIFY_FAILED: 5,
  LAZYFS_SPAN_DECODE_FAILED: 5,
  LAZYFS_BAD_ZTOC: 5,
  LAZYFS_NOT_FOUND: 2,
  LAZYFS_NOT_A_FILE: 21,
  LAZYFS_LAYER_CLOSED: 107,
  LAZYFS_MOUNT_FAILED: 5,
  LAZYFS_UNMOUNT_FAILED: 16,
  LAZYFS_KEEPER_UNAVAILABLE: 107,
  LAZYFS_KEEPER_REFUSED: 5,
  LAZYFS_BAD_OPTIONS: 22,
  LAZYFS_ABORTED: 125,
} satisfies Record<LazyFsErrorCode, number>;
const CODES = Object.keys(EXPECTED_ERRNO) as LazyFsErrorCode[];

describe('LazyFsError', () => {
  it('is a SociError with a LAZYFS_ code, its own name and the errno of its code', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CODES), fc.string(), (code, message) => {
        const err = new LazyFsError(code, message);
        expect(err).toBeInstanceOf(SociError);
        expect(isSociError(err)).toBe(true);
        expect(err.code).toMatch(/^LAZYFS_/);
        expect(err.name).toBe('LazyFsError');
        expect(err.message).toBe(message);
        expect(err.errno).toBe(EXPECTED_ERRNO[code]);
        expect(errnoOf(err)).toBe(EXPECTED_ERRNO[code]);
      }),
    );
  });

  it('keeps its cause, so the chain walkers find what lies under it', () => {
    fc.assert(
      fc.property(fc.constantFrom(...CODES), fc.constantFrom(...CODES), (outer, inner) => {
        const root = new Error('ECONNRESET');
        const err = new LazyFsError(outer, 'outer', {
          cause: new LazyFsError(inner, 'inner', { cause: root }),
        });
        expect(codesOf(err)).toEqual([outer, inner]);
        expect(findCode(err, inner)?.message).toBe(outer === inner ? 'outer' : 'inner');
        expect((findCode(err, inner)?.cause as Error | undefined)?.message).toBe(
          outer === inner ? 'inner' : 'ECONNRESET',
        );
      }),
    );
  });
});

describe('errnoOf', () => {
  it('reads the code, so an error from another copy of lazy-fs maps the same way', () => {
    expect(errnoOf(new SociError('LAZYFS_NOT_FOUND', 'no such file'))).toBe(2);
  });

  it('answers EIO for anything else', () => {
    expect(errnoOf(new Error('boom'))).toBe(5);
    expect(errnoOf(new SociError('REGISTRY_NOT_FOUND', 'not ours'))).toBe(5);
    expect(errnoOf(new SociError('toString', 'a code that is a property of every object'))).toBe(5);
    expect(errnoOf('thrown string')).toBe(5);
    expect(errnoOf(undefined)).toBe(5);
  });
});
