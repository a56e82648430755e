import type { FileHandle } from 'node:fs/promises';

/** A PAX header's data is at most 1 MiB (TarIndexer's bound), plus the header blocks around it. */
const SEARCH_WINDOW = (1 << 20) + 4 * 512;
const utf8 = new TextDecoder('utf-8');

/**
 * The raw bytes of a PAX record value that reached us as a string.
 *
 * TarIndexer decodes PAX values as UTF-8, which turns bytes that are not UTF-8 (binary xattrs:
 * security.capability, POSIX ACLs) into U+FFFD. Writing those would set a wrong value, so the
 * record is read back from the tar: the nearest `<len> <key>=` record before the entry's header
 * whose value decodes to the same string. Returns undefined when there is none.
 *
 * (A ztoc hook that hands out raw PAX values would make this unnecessary.)
 */
export async function rawPaxValue(
  tar: FileHandle,
  headerOffset: number,
  key: string,
  decoded: string,
): Promise<Uint8Array | undefined> {
  const start = Math.max(0, headerOffset - SEARCH_WINDOW);
  const window = Buffer.alloc(headerOffset - start);
  const { bytesRead } = await tar.read(window, 0, window.length, start);
  const bytes = window.subarray(0, bytesRead);
  const needle = Buffer.from(`${key}=`, 'utf8');
  for (let at = bytes.lastIndexOf(needle); at > 0; at = at > 0 ? bytes.lastIndexOf(needle, at - 1) : -1) {
    const value = recordValue(bytes, at, needle.length);
    if (value && utf8.decode(value) === decoded) return value;
  }
  return undefined;
}

/** The value of the record whose key starts at `keyAt`, if a well-formed `<len> key=value\n` is there. */
function recordValue(bytes: Buffer, keyAt: number, keyLength: number): Uint8Array | undefined {
  if (bytes[keyAt - 1] !== 0x20) return undefined;
  let digitsAt = keyAt - 1;
  while (digitsAt > 0 && bytes[digitsAt - 1]! >= 0x30 && bytes[digitsAt - 1]! <= 0x39) digitsAt--;
  const length = Number(bytes.subarray(digitsAt, keyAt - 1).toString('latin1'));
  const end = digitsAt + length;
  if (!(length > 0) || end > bytes.length || bytes[end - 1] !== 0x0a || end - 1 < keyAt + keyLength)
    return undefined;
  return bytes.subarray(keyAt + keyLength, end - 1);
}
