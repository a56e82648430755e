import { formatPlatform, type Platform } from '@soci-ts/oci-referrers';

/** `os/arch[/variant]`, or empty when an entry has no platform. */
export function platformText(p: Platform | undefined): string {
  return p ? formatPlatform(p) : '';
}
