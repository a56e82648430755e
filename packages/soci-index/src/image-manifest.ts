import { checkDescriptor, isStringRecord } from './descriptor-check.js';
import { SociIndexError } from './errors.js';
import { parseJsonObject } from './json-object.js';
import { checkLimit, limitsOf, type ParseOptions } from './limits.js';
import type { ImageManifest } from './oci.js';

/**
 * Reads an image manifest (OCI or Docker schema 2) from a registry: a config descriptor and a
 * list of layer descriptors. Throws INDEX_INVALID_IMAGE naming `what`, or INDEX_LIMIT_EXCEEDED past
 * `options.limits` (maxManifestBytes, maxLayers).
 */
export function parseImageManifest(
  input: Uint8Array | string,
  options: ParseOptions = {},
  what = 'the image manifest',
): ImageManifest {
  const invalid = (why: string): never => {
    throw new SociIndexError('INDEX_INVALID_IMAGE', `${what} is not an image manifest: ${why}`);
  };
  const limits = limitsOf(options);
  const json = parseJsonObject(input, limits, 'maxManifestBytes', what, invalid);
  if (json.mediaType !== undefined && typeof json.mediaType !== 'string')
    invalid('mediaType is not a string');
  checkDescriptor(json.config, 'config', invalid);
  if (!Array.isArray(json.layers)) return invalid('layers is not a list');
  checkLimit(limits, 'maxLayers', json.layers.length, `the number of layers of ${what}`);
  for (const [i, layer] of json.layers.entries()) checkDescriptor(layer, `layers[${i}]`, invalid);
  if (json.subject !== undefined) checkDescriptor(json.subject, 'subject', invalid);
  if (json.annotations !== undefined && !isStringRecord(json.annotations)) {
    invalid('annotations is not a map of strings');
  }
  return json as unknown as ImageManifest;
}
