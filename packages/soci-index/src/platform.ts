import { SociIndexError } from './errors.js';
import type { Platform } from './oci.js';

const NODE_TO_OCI_ARCH: Record<string, string> = { x64: 'amd64', ia32: '386', arm: 'arm', arm64: 'arm64' };

/** The platform of this machine in OCI terms (linux/amd64 on an x64 Linux host). */
export function hostPlatform(): Platform {
  return {
    os: process.platform === 'win32' ? 'windows' : process.platform,
    architecture: NODE_TO_OCI_ARCH[process.arch] ?? process.arch,
  };
}

/** Parses `os/arch[/variant]`. */
export function parsePlatform(text: string): Platform {
  const [os, architecture, variant, extra] = text.split('/');
  if (!os || !architecture || extra !== undefined) {
    throw new SociIndexError(
      'INVALID_IMAGE',
      `bad platform "${text}"; write it as os/arch or os/arch/variant, e.g. linux/amd64`,
    );
  }
  return { os, architecture, ...(variant ? { variant } : {}) };
}

export function formatPlatform(p: Platform | undefined): string {
  if (!p) return '';
  return [p.os, p.architecture, p.variant].filter(Boolean).join('/');
}

/** Whether an image's platform satisfies a wanted one (a wanted variant must match). */
export function platformMatches(have: Platform | undefined, want: Platform): boolean {
  if (!have) return false;
  if (have.os !== want.os || have.architecture !== want.architecture) return false;
  return want.variant === undefined || have.variant === want.variant;
}
