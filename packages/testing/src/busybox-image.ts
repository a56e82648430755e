import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { BuiltImage } from './images.js';
import { run } from './process.js';

export const BUSYBOX = '/bin/busybox';

/** One layer: path -> content; `/bin/busybox` is copied from the host's static busybox with mode 0755. */
export type LayerSpec = Record<string, string | Uint8Array | { busybox: true }>;

/** A runnable image made by umoci: layer 0 has the static busybox, the others plain files. */
export async function buildBusyboxImage(layers: LayerSpec[], tag = 'latest'): Promise<BuiltImage> {
  const root = await mkdtemp(join(tmpdir(), 'soci-busybox-'));
  const layout = join(root, 'layout');
  const image = `${layout}:${tag}`;
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  for (const [i, files] of layers.entries()) {
    const src = join(root, `layer-${i}`);
    await mkdir(src);
    for (const [path, content] of Object.entries(files)) {
      const file = join(src, path);
      await mkdir(dirname(file), { recursive: true });
      if (typeof content === 'string' || content instanceof Uint8Array) {
        await writeFile(file, content);
      } else {
        await copyFile(BUSYBOX, file);
        await chmod(file, 0o755);
      }
    }
    await run('umoci', ['insert', '--image', image, src, '/']);
  }
  await run('umoci', ['gc', '--layout', layout]);
  const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8')) as {
    manifests: { digest: string; annotations?: Record<string, string> }[];
  };
  const entry = index.manifests.find((m) => m.annotations?.['org.opencontainers.image.ref.name'] === tag);
  if (!entry) throw new Error(`umoci layout has no tag ${tag}`);
  return {
    layout,
    tag,
    manifestDigest: entry.digest,
    blobPath: (digest) => join(layout, 'blobs', ...digest.split(':')),
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}
