import { invalidReference } from './errors.js';

/** A parsed, normalised image reference. */
export interface Reference {
  /** Registry host with optional port, e.g. `docker.io`, `127.0.0.1:5000`, `ghcr.io`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/alpine`. */
  repository: string;
  /** Tag; `latest` when the reference names neither a tag nor a digest. */
  tag?: string;
  /** `sha256:<hex>` when the reference pins a digest. */
  digest?: string;
}

export const DOCKER_HUB = 'docker.io';
const MAX_NAME_LENGTH = 255;

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
// A host name or IPv4 address, or a bracketed IPv6 address, with an optional port.
const DOMAIN =
  /^(?:(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?))*|\[[0-9a-fA-F:.]+\])(?::[0-9]{1,5})?$/;
const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;

/** True for a valid `sha256:<64 hex>` or `sha512:<128 hex>` digest. */
export function isDigest(value: string): boolean {
  return DIGEST.test(value);
}

/** True for a `sha256:<64 hex>` digest only: the one algorithm SOCI artifacts and layouts use. */
export function isSha256Digest(value: string): boolean {
  return value.startsWith('sha256:') && DIGEST.test(value);
}

/**
 * Parses `[registry/]name[:tag][@digest]` the way Docker does: no registry means Docker Hub, a single
 * Docker Hub component gets `library/`, the first component is a registry when it has a `.` or a `:`
 * or is `localhost`. Throws InvalidReferenceError quoting the input.
 */
export function parseReference(input: string): Reference {
  if (input.length === 0) throw invalidReference(input, 'it is empty');
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalidReference(input, `"${digest}" is not a sha256/sha512 digest`);
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalidReference(input, `"${tag}" is not a valid tag`);
  }
  const parts = rest.split('/');
  let registry = DOCKER_HUB;
  const first = parts[0]!;
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    if (!DOMAIN.test(first)) throw invalidReference(input, `"${first}" is not a valid registry host`);
    registry = first === 'index.docker.io' || first === 'registry-1.docker.io' ? DOCKER_HUB : first;
    parts.shift();
  }
  if (registry === DOCKER_HUB && parts.length === 1) parts.unshift('library');
  for (const part of parts) {
    if (!COMPONENT.test(part)) {
      const why =
        part === '' ? 'the name has an empty path component' : `"${part}" is not a valid name component`;
      throw invalidReference(input, `${why} (lowercase letters, digits and . _ - separators)`);
    }
  }
  const repository = parts.join('/');
  if (repository.length > MAX_NAME_LENGTH) {
    throw invalidReference(input, `the name is longer than ${MAX_NAME_LENGTH} characters`);
  }
  if (tag === undefined && digest === undefined) tag = 'latest';
  return { registry, repository, ...(tag !== undefined ? { tag } : {}), ...(digest ? { digest } : {}) };
}

/** The canonical string of a reference: `registry/repository[:tag][@digest]`. */
export function formatReference(ref: Reference): string {
  return `${ref.registry}/${ref.repository}${ref.tag ? `:${ref.tag}` : ''}${ref.digest ? `@${ref.digest}` : ''}`;
}
