import { PullError } from '../errors.js';

/** An image reference split the way containerd names images (`<registry>/<repository>:<tag>[@<digest>]`). */
export interface ImageReference {
  registry: string;
  repository: string;
  tag?: string;
  digest?: string;
  /** The full normalized name containerd stores the image under (what `ctr images ls` prints). */
  name: string;
}

const DIGEST = /^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$/;
const TAG = /^\w[\w.-]{0,127}$/;
const REPOSITORY = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:\/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*$/;

/**
 * Normalizes `[registry/]repository[:tag][@digest]` like docker and containerd's CRI do: no registry
 * means `docker.io`, a one-part Docker Hub name gets `library/`, no tag and no digest means `latest`.
 */
export function parseImageReference(input: string): ImageReference {
  const invalid = (why: string) =>
    new PullError(
      'INVALID_REFERENCE',
      `image reference "${input}" is invalid: ${why} (expected registry/repository:tag)`,
    );
  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!DIGEST.test(digest)) throw invalid(`"${digest}" is not a sha256/sha512 digest`);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(':');
  if (colon > rest.lastIndexOf('/')) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw invalid(`"${tag}" is not a valid tag`);
  }
  const slash = rest.indexOf('/');
  const first = slash >= 0 ? rest.slice(0, slash) : '';
  const hasRegistry = slash >= 0 && (first.includes('.') || first.includes(':') || first === 'localhost');
  let registry = hasRegistry ? first : 'docker.io';
  let repository = hasRegistry ? rest.slice(slash + 1) : rest;
  if (registry === 'index.docker.io') registry = 'docker.io';
  if (registry === 'docker.io' && !repository.includes('/')) repository = `library/${repository}`;
  if (!REPOSITORY.test(repository)) throw invalid(`"${repository}" is not a valid repository name`);
  if (tag === undefined && digest === undefined) tag = 'latest';
  const name = `${registry}/${repository}${tag !== undefined ? `:${tag}` : ''}${digest ? `@${digest}` : ''}`;
  const out: ImageReference = { registry, repository, name };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}
