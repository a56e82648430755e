import { chmod, copyFile, mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { run } from './process.js';

/** A file copied from the host into a layer, with the given mode (e.g. an executable). */
export interface HostFile {
  copyFrom: string;
  mode: number;
}

/** Files of one image layer: path inside the image -> content. */
export type TestLayer = Record<string, string | Uint8Array | HostFile>;

/** An OCI image layout made by umoci in a temp directory. */
export interface BuiltImage {
  /** The OCI layout directory (`oci-layout`, `index.json`, `blobs/sha256/...`). */
  layout: string;
  tag: string;
  /** Digest of the image manifest, from the layout's index.json. */
  manifestDigest: string;
  /** Path of a blob of this layout by digest (what the registry must serve byte for byte). */
  blobPath(digest: string): string;
  cleanup(): Promise<void>;
}

/** Builds an image with one gzip layer per entry of `layers`, using umoci (init, new, insert, gc). */
export async function buildImage(options: { layers: TestLayer[]; tag?: string }): Promise<BuiltImage> {
  const tag = options.tag ?? 'latest';
  const root = await mkdtemp(join(tmpdir(), 'soci-image-'));
  const layout = join(root, 'layout');
  const image = `${layout}:${tag}`;
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  for (const [i, files] of options.layers.entries()) {
    const src = join(root, `layer-${i}`);
    await mkdir(src);
    for (const [path, content] of Object.entries(files)) {
      const file = join(src, path);
      await mkdir(dirname(file), { recursive: true });
      if (typeof content === 'string' || content instanceof Uint8Array) {
        await writeFile(file, content);
      } else {
        await copyFile(content.copyFrom, file);
        await chmod(file, content.mode);
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

/** Credentials for skopeo's --src-creds/--dest-creds. */
export interface ToolCredentials {
  user: string;
  password: string;
}

/** Copies `oci:<layout>:<tag>` to `docker://<host>/<repository>:<tag>` with skopeo (plain HTTP). */
export async function pushLayout(
  image: BuiltImage,
  target: { host: string; repository: string; tag?: string; credentials?: ToolCredentials },
): Promise<string> {
  const reference = `${target.host}/${target.repository}:${target.tag ?? image.tag}`;
  await skopeo([
    'copy',
    '--quiet',
    '--dest-tls-verify=false',
    ...(target.credentials
      ? ['--dest-creds', `${target.credentials.user}:${target.credentials.password}`]
      : []),
    `oci:${image.layout}:${image.tag}`,
    `docker://${reference}`,
  ]);
  return reference;
}

/** Builds an image with umoci and pushes it with skopeo; the returned layout is kept for comparisons. */
export async function pushImage(options: {
  host: string;
  repository: string;
  tag?: string;
  layers: TestLayer[];
  credentials?: ToolCredentials;
}): Promise<BuiltImage & { reference: string }> {
  const image = await buildImage({ layers: options.layers, tag: options.tag });
  const reference = await pushLayout(image, options);
  return { ...image, reference };
}

/** Runs skopeo with a policy that accepts anything (tests only) and returns its stdout. */
export async function skopeo(args: string[]): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'soci-skopeo-'));
  try {
    const policy = join(dir, 'policy.json');
    await writeFile(policy, '{"default":[{"type":"insecureAcceptAnything"}]}');
    const [verb, ...rest] = args;
    return (await run('skopeo', ['--policy', policy, verb!, ...rest])).stdout;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
