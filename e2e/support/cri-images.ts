// Images the CRI e2e test needs besides the image under test.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import type { BuiltImage } from '@soci-ts/testing/images';
import { run } from '@soci-ts/testing/process';

/** Manifest digest that `tag` names in an OCI layout's index.json. */
async function taggedManifest(layout: string, tag: string): Promise<string> {
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`OCI layout ${layout} has no tag ${tag}`);
  return entry.digest;
}

/**
 * Sets the image config's command with `umoci config` (a new config and manifest under the same
 * tag) and drops the old ones; the returned image names the new manifest.
 */
export async function withCommand(image: BuiltImage, cmd: readonly string[]): Promise<BuiltImage> {
  const target = `${image.layout}:${image.tag}`;
  await run('umoci', ['config', '--image', target, ...cmd.flatMap((arg) => ['--config.cmd', arg])]);
  await run('umoci', ['gc', '--layout', image.layout]);
  return { ...image, manifestDigest: await taggedManifest(image.layout, image.tag) };
}

/**
 * A pod sandbox ("pause") image: the static busybox sleeping until killed. CRI kills the sandbox
 * with SIGKILL, so a PID 1 that ignores SIGTERM is fine.
 */
export async function buildPauseImage(): Promise<BuiltImage> {
  // A file of its own, so its layer never equals another test image's busybox layer (umoci makes
  // byte-identical layers within the same second, and a present layer is not pulled again).
  const image = await buildBusyboxImage([{ '/bin/busybox': { busybox: true }, '/pause': 'pause\n' }]);
  return withCommand(image, ['/bin/busybox', 'sleep', '2147483647']);
}
