/**
 * Formats a tar modification time the way Go's `time.Time.MarshalText` does for a UTC time
 * (layout `2006-01-02T15:04:05.999999999Z07:00`): fraction trimmed of trailing zeros, no
 * fraction when zero, `Z` for UTC. The reference writer stores exactly this text.
 * `seconds` may be negative; `nanos` is normalised into [0, 1e9).
 */
export function formatModTime(seconds: number, nanos = 0): string {
  let sec = seconds + Math.floor(nanos / 1e9);
  let ns = nanos % 1e9;
  if (ns < 0) ns += 1e9;
  const days = Math.floor(sec / 86400);
  sec -= days * 86400;
  const [y, m, d] = civilFromDays(days);
  const hh = Math.floor(sec / 3600);
  const mm = Math.floor((sec % 3600) / 60);
  const ss = sec % 60;
  const year = y < 0 ? `-${pad(-y, 4)}` : pad(y, 4);
  let text = `${year}-${pad(m, 2)}-${pad(d, 2)}T${pad(hh, 2)}:${pad(mm, 2)}:${pad(ss, 2)}`;
  if (ns !== 0) text += `.${pad(ns, 9).replace(/0+$/, '')}`;
  return `${text}Z`;
}

/** Parses the text written by {@link formatModTime} (or any RFC 3339 time) to seconds + nanos. */
export function parseModTime(text: string): { seconds: number; nanos: number } | undefined {
  const m = /^(-?\d{4,})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?(Z|[+-]\d\d:\d\d)$/.exec(text);
  if (!m) return undefined;
  const days = daysFromCivil(Number(m[1]), Number(m[2]), Number(m[3]));
  let seconds = days * 86400 + Number(m[4]) * 3600 + Number(m[5]) * 60 + Number(m[6]);
  const zone = m[8]!;
  if (zone !== 'Z') {
    const sign = zone.startsWith('-') ? -1 : 1;
    seconds -= sign * (Number(zone.slice(1, 3)) * 3600 + Number(zone.slice(4, 6)) * 60);
  }
  const nanos = m[7] ? Number(m[7].padEnd(9, '0')) : 0;
  return { seconds, nanos };
}

function pad(n: number, width: number): string {
  return String(n).padStart(width, '0');
}

// Proleptic Gregorian calendar <-> days since 1970-01-01 (H. Hinnant's civil algorithms),
// valid for any year, unlike Date which stops at +-275760.
function civilFromDays(z0: number): [number, number, number] {
  const z = z0 + 719468;
  const era = Math.floor(z / 146097);
  const doe = z - era * 146097;
  const yoe = Math.floor(
    (doe - Math.floor(doe / 1460) + Math.floor(doe / 36524) - Math.floor(doe / 146096)) / 365,
  );
  const doy = doe - (365 * yoe + Math.floor(yoe / 4) - Math.floor(yoe / 100));
  const mp = Math.floor((5 * doy + 2) / 153);
  const d = doy - Math.floor((153 * mp + 2) / 5) + 1;
  const m = mp < 10 ? mp + 3 : mp - 9;
  return [yoe + era * 400 + (m <= 2 ? 1 : 0), m, d];
}

function daysFromCivil(y0: number, m: number, d: number): number {
  const y = m <= 2 ? y0 - 1 : y0;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (m > 2 ? m - 3 : m + 9) + 2) / 5) + d - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}
