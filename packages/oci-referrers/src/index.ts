// @soci-ts/oci-referrers: a typed OCI distribution client on undici.

export type { BlobRangeReader } from './blob-range.js';
export type { BlobSource, PushBlobOptions } from './blob-upload.js';
export {
  type Challenge,
  InvalidChallengeError,
  parseChallenge,
  parseChallenges,
  preferredChallenge,
} from './challenge.js';
export { RegistryClient, type RegistryClientOptions } from './client.js';
export {
  type Credential,
  type CredentialsProvider,
  chainCredentials,
  dockerConfigCredentials,
  staticCredentials,
} from './credentials.js';
export { untilAborted } from './deadline.js';
export { assertDigest, createVerifyingStream, digestOf, verifyBytes } from './digest.js';
export {
  DigestMismatchError,
  InvalidReferenceError,
  RegistryError,
  type RegistryErrorCode,
} from './errors.js';
export { type HostOptions, type HostsConfig, registryOrigin } from './hosts.js';
export { isLayerMediaType, type LayerCompression, layerCompressionOf } from './layer-media-type.js';
export { fetchBlobParallel, type ParallelFetchOptions, RequestLimit } from './parallel-fetch.js';
export { formatPlatform, hostPlatform, parsePlatform, platformMatches, selectPlatform } from './platform.js';
export { redactUrl } from './redact.js';
export {
  DOCKER_HUB,
  formatReference,
  isDigest,
  isSha256Digest,
  parseReference,
  type Reference,
} from './reference.js';
export { type ReferrersOptions, referrerDescriptor, referrersTag } from './referrers.js';
export { type FetchedManifest, Repository } from './repository.js';
export type { ReadOptions } from './repository-endpoint.js';
export {
  type AgentOptions,
  createRegistryAgent,
  type RetryOptions,
  type TimeoutOptions,
} from './transport.js';
export * from './types.js';
