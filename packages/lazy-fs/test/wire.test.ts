import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MessageFramer } from '../src/fuse/wire.js';

/** A message as the protocol frames it: its total length first, then bytes. */
function message(body: Uint8Array): Buffer {
  const m = Buffer.alloc(16 + body.length);
  m.writeUInt32LE(m.length, 0);
  Buffer.from(body).copy(m, 16);
  return m;
}

describe('MessageFramer', () => {
  it('gives back exactly the messages sent, however the stream is cut', () => {
    fc.assert(
      fc.property(
        fc.array(fc.uint8Array({ maxLength: 300 }), { maxLength: 20 }),
        fc.array(fc.integer({ min: 1, max: 97 }), { minLength: 1, maxLength: 50 }),
        (bodies, cuts) => {
          const messages = bodies.map(message);
          const stream = Buffer.concat(messages);
          const framer = new MessageFramer();
          const got: Buffer[] = [];
          let at = 0;
          for (let i = 0; at < stream.length; i++) {
            const size = cuts[i % cuts.length]!;
            got.push(...framer.push(stream.subarray(at, at + size)).map((m) => Buffer.from(m)));
            at += size;
          }
          expect(got).toEqual(messages);
        },
      ),
    );
  });

  it('refuses a length shorter than a header', () => {
    const bad = Buffer.alloc(16);
    bad.writeUInt32LE(3, 0);
    expect(() => new MessageFramer().push(bad)).toThrow(/less than a header/);
  });
});
