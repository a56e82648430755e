const utf8 = new TextDecoder('utf-8', { ignoreBOM: true });

/**
 * The raw bytes of a PAX record value that reached us as a string.
 *
 * TarIndexer decodes PAX values as UTF-8, which turns bytes that are not UTF-8 (binary xattrs:
 * security.capability, POSIX ACLs) into U+FFFD. Writing those would set a wrong value, so the
 * value is taken from the raw payloads of the PAX headers that applied to the entry (as the
 * indexer hands them over, global ones first): the last record of `key` whose value decodes to
 * the same string. Returns undefined when there is none.
 */
export function rawPaxValue(
  pax: readonly Uint8Array[],
  key: string,
  decoded: string,
): Uint8Array | undefined {
  const keyBytes = Buffer.from(`${key}=`, 'utf8');
  for (let i = pax.length - 1; i >= 0; i--) {
    let found: Uint8Array | undefined;
    for (const [recordKey, value] of records(pax[i]!)) {
      if (recordKey.equals(keyBytes) && utf8.decode(value) === decoded) found = value;
    }
    if (found) return found;
  }
  return undefined;
}

/** `<len> <key>=<value>\n` records as [key with its `=`, value]; stops at the first malformed one. */
function* records(data: Uint8Array): Generator<[Buffer, Uint8Array]> {
  const bytes = Buffer.from(data.buffer, data.byteOffset, data.byteLength);
  let pos = 0;
  while (pos < bytes.length) {
    const space = bytes.indexOf(0x20, pos);
    if (space < 0) return;
    const length = Number(bytes.subarray(pos, space).toString('latin1'));
    const end = pos + length;
    if (
      !Number.isSafeInteger(length) ||
      length <= space - pos ||
      end > bytes.length ||
      bytes[end - 1] !== 0x0a
    )
      return;
    const eq = bytes.indexOf(0x3d, space + 1);
    if (eq < 0 || eq >= end) return;
    yield [bytes.subarray(space + 1, eq + 1), bytes.subarray(eq + 1, end - 1)];
    pos = end;
  }
}
