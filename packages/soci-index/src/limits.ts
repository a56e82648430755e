import { SociIndexError } from './errors.js';

/**
 * Bounds on the JSON artifacts this package reads from a registry (SOCI index manifests, image
 * manifests, prefetch blobs): past one, parsing stops with INDEX_LIMIT_EXCEEDED before it spends memory
 * or event-loop time on a hostile artifact. The defaults are far above what real artifacts need.
 */
export interface SociIndexLimits {
  /** Largest SOCI index manifest or image manifest, in bytes (checked before JSON.parse). */
  maxManifestBytes: number;
  /** Most entries in a manifest's `layers` (zTOCs and prefetch blobs, or image layers). */
  maxLayers: number;
  /** Largest prefetch blob, in bytes. */
  maxPrefetchBytes: number;
  /** Most span ranges in one prefetch blob. */
  maxPrefetchSpans: number;
}

export const DEFAULT_SOCI_INDEX_LIMITS: Readonly<SociIndexLimits> = Object.freeze({
  // The size registries and containerd accept for a manifest (OCI distribution spec).
  maxManifestBytes: 4 * 1024 * 1024,
  // overlayfs stacks at most ~500 layers; an index has a zTOC and a prefetch blob per layer.
  maxLayers: 4096,
  // A span range is ~50 bytes of JSON: 1 MiB is 20,000 ranges.
  maxPrefetchBytes: 1024 * 1024,
  maxPrefetchSpans: 65_536,
});

export interface ParseOptions {
  /** Overrides of {@link DEFAULT_SOCI_INDEX_LIMITS}. */
  limits?: Partial<SociIndexLimits>;
}

/** The limits in force: defaults with the caller's overrides (each a positive integer). */
export function limitsOf(options: ParseOptions = {}): SociIndexLimits {
  const limits = { ...DEFAULT_SOCI_INDEX_LIMITS, ...options.limits };
  for (const [key, value] of Object.entries(limits)) {
    if (!Number.isSafeInteger(value) || value <= 0 || !(key in DEFAULT_SOCI_INDEX_LIMITS)) {
      throw new SociIndexError(
        'INDEX_INVALID_ARGUMENT',
        `limit ${key} = ${String(value)} is not a known limit with a positive integer value`,
      );
    }
  }
  return limits;
}

/** Throws INDEX_LIMIT_EXCEEDED when `value` is above `limits[key]`; `what` names the artifact part. */
export function checkLimit(
  limits: SociIndexLimits,
  key: keyof SociIndexLimits,
  value: number,
  what: string,
): void {
  if (value > limits[key]) {
    throw new SociIndexError(
      'INDEX_LIMIT_EXCEEDED',
      `${what} is ${value}, above the limit ${key} = ${limits[key]}: the artifact is hostile or ` +
        `unusual; if you trust it, raise ${key}`,
    );
  }
}
