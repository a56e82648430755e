import { ZtocError } from '../errors.js';

const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * Parses PAX extended header data: records `"<len> <key>=<value>\n"` where len counts the
 * whole record in bytes. Values may hold any bytes including newlines, hence length framing.
 */
export function parsePaxRecords(data: Uint8Array, offset: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    // GNU tar pads with NULs in some versions; the records end at the first NUL.
    if (data[pos] === 0) break;
    let sp = pos;
    let len = 0;
    while (sp < data.length && data[sp]! >= 0x30 && data[sp]! <= 0x39 && sp - pos < 12) {
      len = len * 10 + (data[sp]! - 0x30);
      sp++;
    }
    if (sp === pos || data[sp] !== 0x20 || len <= sp - pos + 1 || pos + len > data.length) {
      throw bad(offset, `malformed record at byte ${pos}`);
    }
    const end = pos + len;
    if (data[end - 1] !== 0x0a) throw bad(offset, `record at byte ${pos} does not end in a newline`);
    const body = data.subarray(sp + 1, end - 1);
    const eq = body.indexOf(0x3d);
    if (eq <= 0) throw bad(offset, `record at byte ${pos} has no key=value`);
    records.set(utf8.decode(body.subarray(0, eq)), utf8.decode(body.subarray(eq + 1)));
    pos = end;
  }
  return records;
}

/** PAX time `[-]seconds[.fraction]`, fraction truncated to nanoseconds. */
export function parsePaxTime(value: string, offset: number): { seconds: number; nanos: number } {
  const m = /^(-?)(\d+)(?:\.(\d*))?$/.exec(value);
  if (!m) throw bad(offset, `mtime "${value}" is not a decimal time`);
  const negative = m[1] === '-';
  const whole = Number(m[2]);
  const nanos = Number((m[3] ?? '').slice(0, 9).padEnd(9, '0'));
  if (!Number.isSafeInteger(whole)) throw bad(offset, `mtime "${value}" is out of range`);
  return negative ? { seconds: -whole, nanos: -nanos } : { seconds: whole, nanos };
}

/** Decimal PAX integer (size, uid, gid). */
export function parsePaxInteger(key: string, value: string, offset: number): number {
  if (!/^\d+$/.test(value) || !Number.isSafeInteger(Number(value))) {
    throw bad(offset, `${key}="${value}" is not a non-negative integer`);
  }
  return Number(value);
}

function bad(offset: number, why: string): ZtocError {
  return new ZtocError('ZTOC_BAD_TAR', `PAX header at offset ${offset}: ${why}`);
}
