import { RegistryError } from './errors.js';
import type { Descriptor, ImageIndex, Platform } from './types.js';

/** Node's process.arch -> OCI/Go GOARCH names. */
const NODE_TO_OCI_ARCH: Record<string, string> = {
  x64: 'amd64',
  ia32: '386',
  arm: 'arm',
  arm64: 'arm64',
  ppc64: 'ppc64le',
  s390x: 's390x',
  riscv64: 'riscv64',
  loong64: 'loong64',
  mips: 'mips',
  mipsel: 'mipsle',
};

/** Node's process.platform -> OCI os names. */
const NODE_TO_OCI_OS: Record<string, string> = { win32: 'windows', sunos: 'solaris' };

/** The platform of this host, in OCI terms (e.g. linux/amd64, linux/arm/v7). */
export function hostPlatform(): Platform {
  const architecture = NODE_TO_OCI_ARCH[process.arch] ?? process.arch;
  const os = NODE_TO_OCI_OS[process.platform] ?? process.platform;
  if (architecture === 'arm') {
    const version = (process.config.variables as { arm_version?: string }).arm_version;
    return { os, architecture, variant: `v${version ?? '7'}` };
  }
  if (architecture === 'arm64') return { os, architecture, variant: 'v8' };
  return { os, architecture };
}

/** Parses `os/arch[/variant]`, e.g. `linux/arm64/v8`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) {
    throw new RegistryError(
      'REGISTRY_INVALID_PLATFORM',
      `"${text}" is not a platform (expected os/arch[/variant], e.g. linux/amd64)`,
    );
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform): string {
  return `${p.os}/${p.architecture}${p.variant ? `/${p.variant}` : ''}`;
}

// arm64 images rarely carry a variant; v8 is implied. arm without a variant means v7 (containerd's rule).
function normalizedVariant(p: Platform): string | undefined {
  if (p.architecture === 'arm64') return p.variant ?? 'v8';
  if (p.architecture === 'arm') return p.variant ?? 'v7';
  return p.variant;
}

/** Whether an index entry's platform satisfies the wanted one (os, architecture, and variant if set). */
export function platformMatches(candidate: Platform | undefined, wanted: Platform): boolean {
  if (!candidate) return false;
  if (candidate.os !== wanted.os || candidate.architecture !== wanted.architecture) return false;
  const wantedVariant = wanted.variant === undefined ? undefined : normalizedVariant(wanted);
  return wantedVariant === undefined || normalizedVariant(candidate) === wantedVariant;
}

/** Picks the manifest for `platform` (default: this host) from an index; REGISTRY_PLATFORM_NOT_FOUND otherwise. */
export function selectPlatform(index: ImageIndex, platform: Platform = hostPlatform()): Descriptor {
  const found = index.manifests.find((d) => !d.artifactType && platformMatches(d.platform, platform));
  if (found) return found;
  const available = index.manifests.flatMap((d) => (d.platform ? [formatPlatform(d.platform)] : []));
  throw new RegistryError(
    'REGISTRY_PLATFORM_NOT_FOUND',
    `the image index has no manifest for ${formatPlatform(platform)} (it has: ${available.join(', ') || 'none'}); choose one of those platforms`,
  );
}
