/**
 * A multi-layer test image made by umoci, with what lazy reading must get right: several
 * indexed layers with many spans, a tiny layer below the minimum size, a file replaced in
 * an upper layer, a whiteout, an opaque directory, symlinks and a hardlink.
 */

import { randomBytes } from 'node:crypto';
import { link, mkdir, mkdtemp, readFile, rm, symlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { digestOf } from '@soci-ts/oci-referrers';

import { run } from '@soci-ts/testing';

export interface FixtureImage {
  root: string;
  layout: string;
  tag: string;
  manifestDigest: string;
  cleanup(): Promise<void>;
}

type Entry = Uint8Array | string | { symlink: string } | { hardlink: string };

async function writeTree(dir: string, files: Record<string, Entry>): Promise<void> {
  for (const [path, content] of Object.entries(files)) {
    const file = join(dir, path);
    await mkdir(dirname(file), { recursive: true });
    if (typeof content === 'object' && 'symlink' in content) await symlink(content.symlink, file);
    else if (typeof content === 'object' && 'hardlink' in content)
      await link(join(dir, content.hardlink), file);
    else await writeFile(file, content);
  }
}

/** Random bytes that do not compress, so a layer's compressed size is predictable. */
const noise = (n: number) => randomBytes(n);
/** Text that compresses well, so spans hold much more than their compressed size. */
const text = (n: number, seed: string) =>
  Buffer.from(`${seed} `.repeat(Math.ceil(n / (seed.length + 1)))).subarray(0, n);

/**
 * Layers are made with GNU tar and gzip (pigz for one, so multi-member gzip is covered), and
 * assembled into an OCI layout here: umoci 0.4.7's `insert` writes tars without their
 * end-of-archive blocks, which strict readers (GNU tar, Python, our zTOC builder) reject.
 */
export async function buildFixtureImage(tag = 'v1'): Promise<FixtureImage> {
  const root = await mkdtemp(join(tmpdir(), 'soci-cli-image-'));
  const layout = join(root, 'layout');
  const blobs = join(layout, 'blobs', 'sha256');
  await mkdir(blobs, { recursive: true });
  const putBlob = async (bytes: Uint8Array) => {
    const digest = digestOf(bytes);
    await writeFile(join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const layers: Record<string, Entry>[] = [
    {
      'bin/tool': noise(300_000),
      'etc/config': 'base config\n',
      'etc/old': 'will be whited out\n',
      'opt/app/one': noise(50_000),
      'opt/app/two': 'two\n',
      'usr/share/big.txt': text(2_000_000, 'lorem ipsum'),
      'usr/share/empty': '',
      'usr/lib/libthing.so.1': noise(200_000),
      'usr/lib/libthing.so': { symlink: 'libthing.so.1' },
      'usr/lib/hard': { hardlink: 'usr/lib/libthing.so.1' },
    },
    { 'etc/config': 'tiny layer config\n' },
    {
      'etc/config': 'top config\n',
      'etc/.wh.old': '',
      'opt/app/.wh..wh..opq': '',
      'opt/app/three': 'replaces the whole dir\n',
      'data/blob': noise(400_000),
      'data/sub/a': text(300_000, 'alpha beta'),
      'etc/link-to-data': { symlink: '/data/sub/a' },
    },
  ];
  const diffIds: string[] = [];
  const layerDescriptors = [];
  for (const [i, files] of layers.entries()) {
    const src = join(root, `layer-${i}`);
    await mkdir(src);
    await writeTree(src, files);
    const tar = join(root, `layer-${i}.tar`);
    await run('tar', [
      '--sort=name',
      '--owner=0',
      '--group=0',
      '--numeric-owner',
      '-C',
      src,
      '-cf',
      tar,
      '.',
    ]);
    const tarBytes = await readFile(tar);
    diffIds.push(digestOf(tarBytes));
    await run('sh', ['-c', `${i === 2 ? 'pigz -b 128' : 'gzip'} -n -c ${tar} > ${tar}.gz`]);
    const { digest, size } = await putBlob(await readFile(`${tar}.gz`));
    layerDescriptors.push({ mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip', digest, size });
  }
  const config = await putBlob(
    Buffer.from(
      JSON.stringify({
        architecture: hostArch(),
        os: 'linux',
        config: {},
        rootfs: { type: 'layers', diff_ids: diffIds },
        history: diffIds.map(() => ({ created_by: 'soci-ts test fixture' })),
      }),
    ),
  );
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', ...config },
      layers: layerDescriptors,
    }),
  );
  const m = await putBlob(manifest);
  await writeFile(join(layout, 'oci-layout'), '{"imageLayoutVersion":"1.0.0"}');
  await writeFile(
    join(layout, 'index.json'),
    JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.index.v1+json',
      manifests: [
        {
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          ...m,
          annotations: { 'org.opencontainers.image.ref.name': tag },
        },
      ],
    }),
  );
  return {
    root,
    layout,
    tag,
    manifestDigest: m.digest,
    cleanup: () => rm(root, { recursive: true, force: true }),
  };
}

function hostArch(): string {
  return process.arch === 'x64' ? 'amd64' : process.arch;
}

/**
 * Adds to the fixture's layout an image index tagged `tag` that lists the fixture's manifest
 * (as this host's platform) and a copy for linux/arm64 (same layers, its own config).
 */
export async function addMultiPlatformIndex(image: FixtureImage, tag: string): Promise<string> {
  const blobs = join(image.layout, 'blobs', 'sha256');
  const read = async (digest: string) => readFile(join(blobs, digest.slice(7)));
  const put = async (bytes: Uint8Array) => {
    const digest = digestOf(bytes);
    await writeFile(join(blobs, digest.slice(7)), bytes);
    return { digest, size: bytes.length };
  };
  const manifest = JSON.parse((await read(image.manifestDigest)).toString());
  const config = JSON.parse((await read(manifest.config.digest)).toString());
  const armConfig = await put(Buffer.from(JSON.stringify({ ...config, architecture: 'arm64' })));
  const armManifestBytes = Buffer.from(
    JSON.stringify({ ...manifest, config: { ...manifest.config, ...armConfig } }),
  );
  const armManifest = await put(armManifestBytes);
  const mediaType = 'application/vnd.oci.image.manifest.v1+json';
  const own = await read(image.manifestDigest);
  const index = await put(
    Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.index.v1+json',
        manifests: [
          {
            mediaType,
            digest: image.manifestDigest,
            size: own.length,
            platform: { os: 'linux', architecture: hostArch() },
          },
          { mediaType, ...armManifest, platform: { os: 'linux', architecture: 'arm64' } },
        ],
      }),
    ),
  );
  const layoutIndexPath = join(image.layout, 'index.json');
  const layoutIndex = JSON.parse(await readFile(layoutIndexPath, 'utf8'));
  layoutIndex.manifests.push({
    mediaType: 'application/vnd.oci.image.index.v1+json',
    ...index,
    annotations: { 'org.opencontainers.image.ref.name': tag },
  });
  await writeFile(layoutIndexPath, JSON.stringify(layoutIndex));
  return armManifest.digest;
}
