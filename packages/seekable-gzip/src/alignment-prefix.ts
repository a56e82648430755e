import { WINDOW_SIZE } from './raw-inflate.js';

/**
 * Node's zlib has no inflatePrime, so a span whose first block starts mid-byte cannot be fed as is,
 * and shifting all bits is wrong: stored blocks align to bytes of the *original* stream. Instead we
 * put in front a few bits of valid deflate that end exactly where the span's first block starts
 * within its byte, so every later byte keeps its alignment:
 *
 *   [fixed-Huffman block(s) with one match of length L at distance 32768] + top `bits` bits of byte 0
 *
 * The match copies the first L bytes of the dictionary; the dictionary is the checkpoint window
 * rotated by L, so after the prefix the decoder's history is exactly the window again. The caller
 * drops the first L output bytes.
 */
export interface AlignmentPrefix {
  /** Bytes to feed before `compressed.subarray(1)`. */
  bytes: Uint8Array;
  dictionary: Uint8Array;
  /** Output bytes produced by the prefix (to skip). */
  skip: number;
}

/** Length symbol (fixed Huffman) and its length, per needed prefix size mod 8. */
interface MatchChoice {
  symbol: number;
  extraBits: number;
  length: number;
  emptyBlocks: number;
}

// Prefix bits = 10 * emptyBlocks + 3 (header) + code + extra + 18 (distance 32768) + 7 (end of block).
const CHOICES: Record<number, MatchChoice> = {
  1: { symbol: 281, extraBits: 5, length: 131, emptyBlocks: 0 }, // 41 bits
  2: { symbol: 280, extraBits: 4, length: 115, emptyBlocks: 1 }, // 50 bits
  3: { symbol: 257, extraBits: 0, length: 3, emptyBlocks: 0 }, // 35 bits
  4: { symbol: 265, extraBits: 1, length: 11, emptyBlocks: 0 }, // 36 bits
  5: { symbol: 269, extraBits: 2, length: 19, emptyBlocks: 0 }, // 37 bits
  6: { symbol: 273, extraBits: 3, length: 35, emptyBlocks: 0 }, // 38 bits
  7: { symbol: 277, extraBits: 4, length: 67, emptyBlocks: 0 }, // 39 bits
};

export function alignmentPrefix(bits: number, firstByte: number, window: Uint8Array): AlignmentPrefix {
  const choice = CHOICES[(8 - bits) & 7];
  if (!choice || bits === 0) throw new Error(`no alignment prefix needed for bits=${bits}`);
  const w = new BitWriter();
  for (let i = 0; i < choice.emptyBlocks; i++) {
    writeFixedBlockHeader(w);
    writeLengthSymbol(w, 256);
  }
  writeFixedBlockHeader(w);
  writeLengthSymbol(w, choice.symbol);
  w.bits(0, choice.extraBits); // smallest length of that symbol
  w.huffman(29, 5); // distance symbol 29: base 24577 + 13 extra bits
  w.bits(32768 - 24577, 13);
  writeLengthSymbol(w, 256);
  w.bits(firstByte >> (8 - bits), bits);

  const L = choice.length;
  const dictionary = new Uint8Array(WINDOW_SIZE);
  dictionary.set(window.subarray(WINDOW_SIZE - L), 0);
  dictionary.set(window.subarray(0, WINDOW_SIZE - L), L);
  return { bytes: w.finish(), dictionary, skip: L };
}

function writeFixedBlockHeader(w: BitWriter): void {
  w.bits(0, 1); // BFINAL = 0
  w.bits(1, 2); // BTYPE = 01, fixed Huffman
}

/** Fixed Huffman literal/length codes for symbols 256..287 (RFC 1951 3.2.6). */
function writeLengthSymbol(w: BitWriter, symbol: number): void {
  if (symbol < 280) w.huffman(symbol - 256, 7);
  else w.huffman(0xc0 + (symbol - 280), 8);
}

/** Deflate bit order: values LSB first; Huffman codes MSB first. */
class BitWriter {
  private readonly out: number[] = [];
  private acc = 0;
  private n = 0;

  bits(value: number, count: number): void {
    for (let i = 0; i < count; i++) this.push((value >> i) & 1);
  }

  huffman(code: number, length: number): void {
    for (let i = length - 1; i >= 0; i--) this.push((code >> i) & 1);
  }

  finish(): Uint8Array {
    if (this.n !== 0) throw new Error('alignment prefix does not end on a byte boundary');
    return Uint8Array.from(this.out);
  }

  private push(bit: number): void {
    this.acc |= bit << this.n;
    if (++this.n === 8) {
      this.out.push(this.acc);
      this.acc = 0;
      this.n = 0;
    }
  }
}
