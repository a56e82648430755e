export { formatPlatform, hostPlatform, parsePlatform, platformMatches } from '@soci-ts/oci-referrers';
