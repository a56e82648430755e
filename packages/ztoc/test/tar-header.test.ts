// The header checksum (summed a word at a time) against a plain byte loop, and the ASCII fast
// path of text fields against the UTF-8 decoder: any header bytes.
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { ZtocError } from '../src/index.js';
import { BLOCK, parseHeader } from '../src/tar/header.js';

/**
 * A ustar header from `fill`, with `checksum` (of the block with its checksum field as spaces)
 * stored as 6 octal digits, NUL, space; a negative sum (impossible in octal) gives undefined.
 */
function header(fill: Uint8Array, checksum: (block: Uint8Array) => number): Uint8Array | undefined {
  const block = new Uint8Array(BLOCK);
  block.set(fill);
  // Numeric fields parseHeader reads must be valid octal: set them, keep the rest random.
  for (const [at, len] of [
    [100, 8],
    [108, 8],
    [116, 8],
    [124, 12],
    [136, 12],
    [329, 8],
    [337, 8],
  ] as const) {
    block.fill(0x30, at, at + len - 1);
    block[at + len - 1] = 0;
  }
  block.set(new TextEncoder().encode('ustar\u000000'), 257);
  block.fill(0x20, 148, 156);
  const sum = checksum(block);
  if (sum < 0) return undefined;
  block.set(new TextEncoder().encode(`${sum.toString(8).padStart(6, '0')}\u0000 `), 148);
  return block;
}

const unsignedSum = (b: Uint8Array) => b.reduce((s, x) => s + x, 0);
const signedSum = (b: Uint8Array) => b.reduce((s, x) => s + (x > 127 ? x - 256 : x), 0);
const bytes = fc.uint8Array({ minLength: BLOCK, maxLength: BLOCK });

describe('tar header checksum', () => {
  it('accepts the unsigned and the signed sum of any header', () => {
    fc.assert(
      fc.property(bytes, (fill) => {
        expect(() => parseHeader(header(fill, unsignedSum)!, 0)).not.toThrow();
        // Old tars summed signed bytes (a sum below zero cannot be stored in octal).
        const signed = header(fill, signedSum);
        if (signed) expect(() => parseHeader(signed, 0)).not.toThrow();
      }),
      { numRuns: 300 },
    );
  });

  it('rejects any other stored sum', () => {
    fc.assert(
      fc.property(bytes, fc.integer({ min: -5000, max: 5000 }), (fill, off) => {
        fc.pre(off !== 0);
        let signedOff = 0;
        const block = header(fill, (b) => {
          signedOff = signedSum(b) - unsignedSum(b);
          return unsignedSum(b) + off;
        });
        if (!block || off === signedOff) return; // not storable, or the signed sum itself
        expect(() => parseHeader(block, 7)).toThrow(ZtocError);
        expect(() => parseHeader(block, 7)).toThrow(/offset 7 has checksum/);
      }),
      { numRuns: 300 },
    );
  });

  it('sums a block that is not word-aligned in its buffer the same way', () => {
    fc.assert(
      fc.property(bytes, fc.integer({ min: 1, max: 3 }), (fill, shift) => {
        const aligned = header(fill, unsignedSum)!;
        const buffer = new Uint8Array(BLOCK + 4);
        buffer.set(aligned, shift);
        expect(parseHeader(buffer.subarray(shift, shift + BLOCK), 0)).toEqual(parseHeader(aligned, 0));
      }),
      { numRuns: 100 },
    );
  });
});

describe('tar header text fields', () => {
  it('reads names as UTF-8, ASCII or not, up to the first NUL', () => {
    fc.assert(
      fc.property(fc.string({ unit: 'binary', maxLength: 30 }), (name) => {
        const encoded = new TextEncoder().encode(name).subarray(0, 100);
        const fill = new Uint8Array(BLOCK);
        fill.set(encoded);
        const expected = new TextDecoder().decode(
          encoded.subarray(0, encoded.indexOf(0) < 0 ? 100 : encoded.indexOf(0)),
        );
        expect(parseHeader(header(fill, unsignedSum)!, 0).name).toBe(expected);
      }),
      { numRuns: 500 },
    );
  });
});
