/**
 * A URL fit for error messages and logs: scheme, host and path. A query becomes `?<redacted>` because
 * pre-signed blob URLs (S3 `X-Amz-Signature`, Azure `sig`, upload `_state`) carry bearer secrets there; user
 * info and fragment are dropped. Every message of this package that names a URL goes through here.
 */
export function redactUrl(url: URL | string): string {
  let parsed: URL;
  try {
    parsed = typeof url === 'string' ? new URL(url) : url;
  } catch {
    return redactUnparsedUrl(url as string);
  }
  const query = parsed.search ? '?<redacted>' : '';
  return `${parsed.protocol}//${parsed.host}${parsed.pathname}${query}`;
}

/** The same cut for text that is not a valid absolute URL (a relative or broken Location). */
function redactUnparsedUrl(text: string): string {
  const withoutUserInfo = text.replace(/^([a-z][a-z0-9+.-]*:\/\/)[^/?#]*@/i, '$1');
  const cut = withoutUserInfo.search(/[?#]/);
  if (cut < 0) return withoutUserInfo;
  return `${withoutUserInfo.slice(0, cut)}${withoutUserInfo[cut] === '?' ? '?<redacted>' : ''}`;
}
