import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  causeChain,
  codesOf,
  findCause,
  findCode,
  hasCode,
  isSociError,
  isUnreachable,
  SociError,
  type SociErrorOptions,
  systemCodeOf,
} from '../src/index.js';

class WidgetError extends SociError<'WIDGET_BROKEN' | 'WIDGET_MISSING'> {
  override readonly name = 'WidgetError';
  readonly part: string | undefined;
  constructor(
    code: 'WIDGET_BROKEN' | 'WIDGET_MISSING',
    message: string,
    options: SociErrorOptions & { part?: string } = {},
  ) {
    super(code, message, options);
    this.part = options.part;
  }
}

/** A Node-style system error (not a SociError). */
function systemError(code: string, cause?: unknown): Error {
  return Object.assign(new Error(`system ${code}`, cause === undefined ? undefined : { cause }), { code });
}

describe('SociError', () => {
  it('keeps code, message, cause and the subclass details and name', () => {
    const cause = new Error('underneath');
    const err = new WidgetError('WIDGET_BROKEN', 'the widget broke; replace it', { cause, part: 'gear' });
    expect(err).toBeInstanceOf(Error);
    expect(err.code).toBe('WIDGET_BROKEN');
    expect(err.message).toBe('the widget broke; replace it');
    expect(err.cause).toBe(cause);
    expect(err.part).toBe('gear');
    expect(err.name).toBe('WidgetError');
    expect(String(err)).toBe('WidgetError: the widget broke; replace it');
    expect(new SociError('X_Y', 'm').name).toBe('SociError');
  });

  it('has no cause property when none is given', () => {
    expect('cause' in new SociError('X_Y', 'm')).toBe(false);
    expect('cause' in new SociError('X_Y', 'm', { cause: undefined })).toBe(false);
  });

  it('is recognised across copies of the package by its brand, not by instanceof', () => {
    // What a second installed copy's class looks like: another class with the same brand.
    const brand = Symbol.for('@soci-ts/errors.SociError');
    class OtherCopy extends Error {
      readonly code = 'OTHER_COPY';
    }
    Object.defineProperty(OtherCopy.prototype, brand, { value: true });
    const foreign = new OtherCopy('from another copy');
    expect(foreign instanceof SociError).toBe(false);
    expect(isSociError(foreign)).toBe(true);
    expect(hasCode(new Error('wrap', { cause: foreign }), 'OTHER_COPY')).toBe(true);
    expect(isSociError(Object.assign(new Error('x'), { code: 'LOOKS_LIKE_ONE' }))).toBe(false);
    expect(isSociError({ code: 'X', message: 'plain object' })).toBe(false);
  });
});

describe('causeChain', () => {
  it('lists the error, then each cause, outermost first', () => {
    const c = systemError('ECONNREFUSED');
    const b = new WidgetError('WIDGET_MISSING', 'b', { cause: c });
    const a = new SociError('TOP_LEVEL', 'a', { cause: b });
    expect(causeChain(a)).toEqual([a, b, c]);
    expect(codesOf(a)).toEqual(['TOP_LEVEL', 'WIDGET_MISSING']);
    expect(systemCodeOf(a)).toBe('ECONNREFUSED');
    expect(findCode(a, 'WIDGET_MISSING', 'WIDGET_BROKEN')).toBe(b);
    expect(findCode(a, 'WIDGET_BROKEN')).toBeUndefined();
    expect(findCause(a, (e): e is Error => e instanceof Error && e.message === 'b')).toBe(b);
  });

  it('looks into AggregateError members (where undici puts the network failure)', () => {
    const inner = systemError('ECONNREFUSED');
    const agg = new AggregateError([new Error('first'), inner], 'all failed');
    const top = new SociError('REGISTRY_NETWORK', 'cannot reach', { cause: agg });
    expect(causeChain(top)).toContain(inner);
    expect(systemCodeOf(top)).toBe('ECONNREFUSED');
  });

  it('skips SociError codes when asked for a system code', () => {
    const top = new SociError('A_B', 'x', { cause: new SociError('C_D', 'y') });
    expect(systemCodeOf(top)).toBeUndefined();
  });

  it('ends on cycles, non-errors and deep chains', () => {
    const a = new Error('a') as Error & { cause?: unknown };
    const b = new Error('b', { cause: a });
    a.cause = b;
    expect(causeChain(a)).toEqual([a, b]);
    expect(causeChain(undefined)).toEqual([]);
    expect(causeChain('text')).toEqual(['text']);
    let deep: unknown = new SociError('DEEP_BOTTOM', 'bottom');
    for (let i = 0; i < 1000; i++) deep = new Error(`level ${i}`, { cause: deep });
    const chain = causeChain(deep);
    expect(chain.length).toBeLessThan(100);
    expect(hasCode(deep, 'DEEP_BOTTOM')).toBe(false);
  });

  it('finds a code wherever it sits in any chain (property)', () => {
    fc.assert(
      fc.property(
        fc.array(fc.constantFrom('sys', 'plain', 'soci', 'aggregate'), { maxLength: 10 }),
        fc.nat(10),
        (kinds, at) => {
          const position = Math.min(at, kinds.length);
          const target = new SociError('TARGET_CODE', 'target');
          let err: unknown;
          const layers: string[] = [...kinds];
          layers.splice(position, 0, 'target');
          for (const kind of layers.reverse()) {
            const cause = err;
            err =
              kind === 'target'
                ? Object.assign(target, cause === undefined ? {} : { cause })
                : kind === 'sys'
                  ? systemError('EPIPE', cause)
                  : kind === 'soci'
                    ? new SociError('OTHER_CODE', 'other', { cause })
                    : kind === 'aggregate'
                      ? new AggregateError(cause === undefined ? [] : [cause], 'agg')
                      : new Error('plain', cause === undefined ? undefined : { cause });
          }
          expect(findCode(err, 'TARGET_CODE')).toBe(target);
          expect(hasCode(err, 'NO_SUCH_CODE')).toBe(false);
          expect(codesOf(err).filter((c) => c === 'TARGET_CODE')).toEqual(['TARGET_CODE']);
          expect(causeChain(err)).toHaveLength(layers.length);
        },
      ),
    );
  });
});

describe('isUnreachable', () => {
  it('is true for a connect failure anywhere in the chain, or for a given code', () => {
    const refused = new SociError('REGISTRY_NETWORK', 'cannot connect', {
      cause: new AggregateError([systemError('ECONNREFUSED')], 'all failed'),
    });
    expect(isUnreachable(refused)).toBe(true);
    expect(isUnreachable(new SociError('REGISTRY_TIMEOUT', 'slow'))).toBe(false);
    expect(isUnreachable(new SociError('REGISTRY_TIMEOUT', 'slow'), 'REGISTRY_TIMEOUT')).toBe(true);
    // A host that answered, even with a failure, was reachable.
    expect(isUnreachable(new SociError('REGISTRY_DENIED', 'no', { cause: systemError('EACCES') }))).toBe(
      false,
    );
    expect(isUnreachable(new Error('plain'))).toBe(false);
  });
});
