// @soci-ts/oci-referrers: a typed OCI distribution client on undici. Every export is listed in the
// README's "Exports"; keep the two the same.

export type { BlobRangeReader } from './blob-range.js';
export type { BlobSource, PushBlobOptions } from './blob-upload.js';
export { type Challenge, InvalidChallengeError, parseChallenges, preferredChallenge } from './challenge.js';
export { RegistryClient, type RegistryClientOptions } from './client.js';
export {
  type Credential,
  type CredentialsProvider,
  chainCredentials,
  dockerConfigCredentials,
  staticCredentials,
} from './credentials.js';
export { untilAborted } from './deadline.js';
export { createVerifyingStream, digestOf, verifyBytes } from './digest.js';
export {
  DigestMismatchError,
  InvalidReferenceError,
  RegistryError,
  type RegistryErrorCode,
  type RegistryErrorOptions,
} from './errors.js';
export type { HostOptions, HostsConfig } from './hosts.js';
export type { TimeoutOptions } from './http-request.js';
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
export { type FetchedManifest, type PushManifestOptions, Repository } from './repository.js';
export type { ReadOptions, WriteOptions } from './repository-endpoint.js';
export { type AgentOptions, createRegistryAgent, type RetryOptions } from './transport.js';
export {
  type Descriptor,
  EMPTY_JSON_BYTES,
  EMPTY_JSON_DIGEST,
  type ImageIndex,
  type ImageManifest,
  isImageIndex,
  isIndexMediaType,
  isManifestMediaType,
  MANIFEST_MEDIA_TYPES,
  type Manifest,
  MediaType,
  type Platform,
} from './types.js';
