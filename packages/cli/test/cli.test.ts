import { mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { RegistryClient } from '@soci-ts/oci-referrers';
import { findSociIndex, LocalStore } from '@soci-ts/soci-index';
import {
  pushLayout,
  run,
  skopeo,
  startFaultProxy,
  startReferrersRegistry,
  startRegistry,
  type TestRegistry,
} from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addMultiPlatformIndex,
  buildFixtureImage,
  type FixtureImage,
} from '../../soci-index/test/fixture.js';
import { readBytes, regularFiles, soci, sociOk, tempRoot } from './helpers.js';

const BUILD = ['--min-layer-size', '65536', '--span-size', '65536', '--quiet'];

let registry: TestRegistry;
let referrersRegistry: TestRegistry | undefined;
let image: FixtureImage;
let ref: string;
let rootfs: string;

beforeAll(async () => {
  [registry, image] = await Promise.all([startRegistry(), buildFixtureImage()]);
  referrersRegistry = await startReferrersRegistry().catch(() => undefined);
  ref = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
    host: registry.host,
    repository: 'app',
  });
  const bundle = join(image.root, 'bundle');
  await run('umoci', ['unpack', '--image', `${image.layout}:${image.tag}`, bundle]);
  rootfs = join(bundle, 'rootfs');
});

afterAll(async () => {
  await Promise.all([registry?.stop(), referrersRegistry?.stop(), image?.cleanup()]);
});

function client() {
  return new RegistryClient({ retry: { maxRetries: 0 } });
}

describe('soci create + push (v1)', () => {
  it('builds an index for the big layers, pushes it, and it is found through the referrers tag fallback', async () => {
    const root = await tempRoot();
    const created = JSON.parse((await sociOk('create', ref, '--root', root, '--json', ...BUILD)).stdout);
    expect(created).toHaveLength(1);
    const layers = created[0].layers as { ztoc: string | null; skipped: string | null }[];
    expect(layers.filter((l) => l.ztoc)).toHaveLength(2); // the tiny, whiteout and opaque layers are skipped
    expect(created[0].imageManifestDigest).toBe(image.manifestDigest);

    const listed = JSON.parse((await sociOk('index', 'list', '--root', root, '--json')).stdout);
    expect(listed.map((e: { digest: string }) => e.digest)).toEqual([created[0].digest]);

    await sociOk('push', ref, '--root', root, '--quiet');
    const c = client();
    const found = await findSociIndex(c.repository(ref), image.manifestDigest);
    await c.close();
    expect(found?.descriptor.digest).toBe(created[0].digest);
    expect(found?.via).toBe('v1-referrers');
    expect(found?.index.subject?.digest).toBe(image.manifestDigest);

    // Pushing again: the index is already there, nothing else exists, so no warning.
    const again = await sociOk('push', ref, '--root', root);
    expect(again.stderr).not.toMatch(/warning/);
  });

  it('is found through the referrers API on a registry that has it', async (t) => {
    if (!referrersRegistry) t.skip();
    const target = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
      host: referrersRegistry!.host,
      repository: 'app',
    });
    const root = await tempRoot();
    await sociOk('create', target, '--root', root, ...BUILD);
    await sociOk('push', target, '--root', root, '--quiet');
    const c = client();
    const found = await findSociIndex(c.repository(target), image.manifestDigest, { sociV2: false });
    await c.close();
    expect(found?.via).toBe('v1-referrers');
    // The fallback tag was not needed.
    const tags = await client().repository(target).tags();
    expect(tags.filter((t) => t.startsWith('sha256-'))).toEqual([]);
  });

  it('--existing-index skip leaves the registry alone, warn pushes with a warning', async () => {
    const rootA = await tempRoot();
    const rootB = await tempRoot();
    const target = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
      host: registry.host,
      repository: 'dup',
    });
    await sociOk('create', target, '--root', rootA, ...BUILD);
    await sociOk('push', target, '--root', rootA);
    await sociOk('create', target, '--root', rootB, '--min-layer-size', '65536', '--span-size', '131072');
    const skipped = await sociOk('push', target, '--root', rootB, '--existing-index', 'skip');
    expect(skipped.stdout).toMatch(/^skipped/);
    const warned = await sociOk('push', target, '--root', rootB);
    expect(warned.stderr).toMatch(/warning: .* already has SOCI index/);
    expect(warned.stdout).toMatch(/^pushed/);
  });
});

describe('soci create --prefetch', () => {
  it('adds prefetch blobs for the listed paths, warns about the missing ones, and pushes them', async () => {
    const root = await tempRoot();
    const list = join(await tempRoot(), 'prefetch.txt');
    await writeFile(list, '# read first\n/etc/link-to-data\n\n/bin/tool\n/nope\n');
    const target = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
      host: registry.host,
      repository: 'prefetched',
    });
    const created = await sociOk('create', target, '--root', root, '--prefetch', list, ...BUILD.slice(0, -1));
    expect(created.stderr).toMatch(
      /warning: 1 --prefetch entries name no file data of sha256:[0-9a-f]{64}: \/nope/,
    );
    await sociOk('push', target, '--root', root, '--quiet');
    const c = client();
    const repo = c.repository(target);
    const found = (await findSociIndex(repo, image.manifestDigest))!;
    expect(found.index.prefetches.map((p) => p.layerDigest)).toEqual([
      found.index.ztocs[0]!.layerDigest,
      found.index.ztocs[1]!.layerDigest,
    ]);
    for (const p of found.index.prefetches) {
      const blob = JSON.parse(new TextDecoder().decode(await repo.fetchBlobBytes(p.digest)));
      expect(blob.version).toBe('1.0');
      expect(blob.prefetch_spans.length).toBeGreaterThan(0);
    }
    await c.close();
  });

  it('a list that cannot be read or names nothing is a usage error', async () => {
    const root = await tempRoot();
    const missing = await soci(
      'create',
      ref,
      '--root',
      root,
      '--prefetch',
      join(root, 'no-such-list'),
      '--quiet',
    );
    expect(missing.code).not.toBe(0);
    expect(missing.stderr).toMatch(/cannot read the --prefetch list .*no-such-list/);
    const empty = join(await tempRoot(), 'empty-list.txt');
    await writeFile(empty, '# nothing\n');
    const none = await soci('create', ref, '--root', root, '--prefetch', empty, '--quiet');
    expect(none.stderr).toMatch(/names no paths/);
    expect(await readdir(root).catch(() => [])).not.toContain('index.json');
  });
});

describe('reading files through the index', () => {
  it('ztoc info prints the reference fields; ztoc get-file returns every file of every indexed layer', async () => {
    const root = await tempRoot();
    await sociOk('create', ref, '--root', root, ...BUILD);
    const ztocs = JSON.parse((await sociOk('ztoc', 'list', '--root', root, '--json')).stdout) as {
      digest: string;
      layerDigest: string;
    }[];
    expect(ztocs).toHaveLength(2);
    let checked = 0;
    for (const z of ztocs) {
      const info = JSON.parse((await sociOk('ztoc', 'info', z.digest, '--root', root, '--json')).stdout);
      expect(Object.keys(info)).toEqual([
        'version',
        'build_tool',
        'size',
        'span_size',
        'num_spans',
        'num_files',
        'num_multi_span_files',
        'files',
      ]);
      expect(info.span_size).toBe(65536);
      expect(info.num_spans).toBeGreaterThan(3);
      const unpacked = join(image.root, `unpacked-${z.layerDigest.slice(7, 19)}`);
      await mkdir(unpacked, { recursive: true });
      await run('tar', [
        '-xzf',
        join(image.layout, 'blobs', 'sha256', z.layerDigest.slice(7)),
        '-C',
        unpacked,
      ]);
      for (const f of info.files as { filename: string; type: string }[]) {
        if (f.type !== 'reg' && f.type !== 'hardlink') continue;
        const got = await sociOk('ztoc', 'get-file', z.digest, f.filename, '--root', root);
        expect(got.bytes.equals(await readBytes(join(unpacked, f.filename))), f.filename).toBe(true);
        checked++;
      }
    }
    expect(checked).toBeGreaterThan(8);
  });

  it('soci cat gives the bytes of the merged rootfs for every file, and honours whiteouts and opaque dirs', async () => {
    const root = await tempRoot();
    await sociOk('create', ref, '--root', root, ...BUILD);
    const files = await regularFiles(rootfs);
    expect(files).toContain('/etc/config');
    for (const path of files) {
      const got = await sociOk('cat', ref, path, '--root', root);
      expect(got.bytes.equals(await readBytes(join(rootfs, path))), path).toBe(true);
    }
    expect((await sociOk('cat', ref, '/etc/config', '--root', root)).stdout).toBe('top config\n');
    expect(
      (await sociOk('cat', ref, '/etc/link-to-data', '--root', root)).bytes.equals(
        await readBytes(join(rootfs, 'data/sub/a')),
      ),
    ).toBe(true);
    for (const hidden of ['/etc/old', '/opt/app/one']) {
      const r = await soci('cat', ref, hidden, '--root', root);
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/no such file/);
    }
  });
});

describe('soci convert (v2)', () => {
  it('pushes an image skopeo accepts, layers unchanged, SOCI index found through the annotation', async () => {
    const root = await tempRoot();
    const dst = `${registry.host}/converted:v2`;
    const out = JSON.parse((await sociOk('convert', ref, dst, '--root', root, '--json', ...BUILD)).stdout);
    expect(out.uploadedLayers).toBe(0); // same registry: mounted, never uploaded again
    const inspect = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${dst}`]));
    expect(inspect.mediaType).toBe('application/vnd.oci.image.index.v1+json');
    expect(inspect.manifests[1].artifactType).toBe('application/vnd.amazon.soci.index.v2+json');
    const original = JSON.parse(
      await readFile(join(image.layout, 'blobs', 'sha256', image.manifestDigest.slice(7)), 'utf8'),
    );
    const converted = JSON.parse(
      await skopeo([
        'inspect',
        '--tls-verify=false',
        '--raw',
        `docker://${registry.host}/converted@${out.platforms[0].manifest}`,
      ]),
    );
    expect(converted.layers.map((l: { digest: string }) => l.digest)).toEqual(
      original.layers.map((l: { digest: string }) => l.digest),
    );
    expect(converted.annotations['com.amazon.soci.index-digest']).toBe(out.platforms[0].sociIndex);
    const copyDir = join(image.root, 'copy');
    await skopeo(['copy', '--quiet', '--src-tls-verify=false', `docker://${dst}`, `oci:${copyDir}:copy`]);

    const c = client();
    const found = await findSociIndex(c.repository(dst), out.platforms[0].manifest);
    await c.close();
    expect(found?.via).toBe('v2-annotation');
    expect(found?.descriptor.digest).toBe(out.platforms[0].sociIndex);

    // With an empty store, cat discovers the index in the registry.
    const fresh = await tempRoot();
    expect(
      (await sociOk('cat', dst, '/usr/share/big.txt', '--root', fresh)).bytes.equals(
        await readBytes(join(rootfs, 'usr/share/big.txt')),
      ),
    ).toBe(true);
    expect(await readdir(join(fresh, 'blobs', 'sha256'))).toEqual([]);
  });
});

describe('soci convert from a local layout', () => {
  it('uploads the layers once, then a second convert finds them all present', async () => {
    const root = await tempRoot();
    const dst = `${registry.host}/from-layout:v2`;
    const src = `oci:${image.layout}:${image.tag}`;
    const first = JSON.parse((await sociOk('convert', src, dst, '--root', root, '--json', ...BUILD)).stdout);
    expect(first.uploadedLayers).toBe(4); // config + 3 layers
    const again = JSON.parse((await sociOk('convert', src, dst, '--root', root, '--json', ...BUILD)).stdout);
    expect(again.uploadedLayers).toBe(0);
    expect(again.digest).toBe(first.digest);
    const fresh = await tempRoot();
    const got = await sociOk('cat', dst, '/data/sub/a', '--root', fresh);
    expect(got.bytes.equals(await readBytes(join(rootfs, 'data/sub/a')))).toBe(true);
  });
});

describe('multi-platform images', () => {
  it('create --platform picks one platform; convert --all-platforms indexes each and keeps the index shape', async () => {
    const armDigest = await addMultiPlatformIndex(image, 'multi');
    await skopeo([
      'copy',
      '--quiet',
      '--all',
      '--dest-tls-verify=false',
      `oci:${image.layout}:multi`,
      `docker://${registry.host}/multi:1`,
    ]);
    const src = `${registry.host}/multi:1`;
    const root = await tempRoot();
    const [arm] = JSON.parse(
      (await sociOk('create', src, '--platform', 'linux/arm64', '--root', root, '--json', ...BUILD)).stdout,
    );
    expect(arm.imageManifestDigest).toBe(armDigest);
    expect(arm.platform).toEqual({ os: 'linux', architecture: 'arm64' });

    const dst = `${registry.host}/multi:soci`;
    const out = JSON.parse(
      (await sociOk('convert', src, dst, '--all-platforms', '--root', root, '--json', ...BUILD)).stdout,
    );
    expect(out.platforms.map((p: { platform: string }) => p.platform).sort()).toEqual([
      'linux/amd64',
      'linux/arm64',
    ]);
    const index = JSON.parse(await skopeo(['inspect', '--tls-verify=false', '--raw', `docker://${dst}`]));
    expect(index.manifests).toHaveLength(4);
    const soci = index.manifests.filter(
      (d: { artifactType?: string }) => d.artifactType === 'application/vnd.amazon.soci.index.v2+json',
    );
    expect(
      soci
        .map(
          (d: { annotations: Record<string, string> }) =>
            d.annotations['com.amazon.soci.image-manifest-digest'],
        )
        .sort(),
    ).toEqual(out.platforms.map((p: { manifest: string }) => p.manifest).sort());
    const c = client();
    for (const p of out.platforms) {
      expect((await findSociIndex(c.repository(dst), p.manifest))?.descriptor.digest).toBe(p.sociIndex);
    }
    await c.close();
    // skopeo can copy every platform of the converted image.
    await skopeo([
      'copy',
      '--quiet',
      '--all',
      '--src-tls-verify=false',
      `docker://${dst}`,
      `oci:${join(image.root, 'multi-copy')}:x`,
    ]);
  });
});

describe('bad input', () => {
  async function expectClean(root: string) {
    expect(
      await LocalStore.open(root)
        .then((s) => s.listIndexes())
        .catch(() => []),
    ).toEqual([]);
  }

  it('an invalid reference', async () => {
    const root = await tempRoot();
    const r = await soci('create', 'Not A Ref::', '--root', root);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/reference/i);
    await expectClean(root);
  });

  it('a missing image', async () => {
    const root = await tempRoot();
    const r = await soci('create', `${registry.host}/nothing:here`, '--root', root);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/nothing/);
    await expectClean(root);
  });

  it('a zstd layer', async () => {
    const root = await tempRoot();
    const layout = join(image.root, 'zstd-layout');
    await run('cp', ['-r', image.layout, layout]);
    const manifestPath = join(layout, 'blobs', 'sha256', image.manifestDigest.slice(7));
    const manifest = JSON.parse(await readFile(manifestPath, 'utf8'));
    manifest.layers[0].mediaType = 'application/vnd.oci.image.layer.v1.tar+zstd';
    const bytes = Buffer.from(JSON.stringify(manifest));
    const { digestOf } = await import('@soci-ts/oci-referrers');
    const digest = digestOf(bytes);
    await writeFile(join(layout, 'blobs', 'sha256', digest.slice(7)), bytes);
    const index = JSON.parse(await readFile(join(layout, 'index.json'), 'utf8'));
    index.manifests[0] = { ...index.manifests[0], digest, size: bytes.length };
    await writeFile(join(layout, 'index.json'), JSON.stringify(index));
    const r = await soci('create', `oci:${layout}:${image.tag}`, '--root', root, ...BUILD);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/zstd/);
    await expectClean(root);
    expect(await readdir(join(root, 'blobs', 'sha256'))).toEqual([]);
  });

  it('a corrupt store entry', async () => {
    const root = await tempRoot();
    await sociOk('create', `oci:${image.layout}:${image.tag}`, '--root', root, ...BUILD);
    const [z] = JSON.parse((await sociOk('ztoc', 'list', '--root', root, '--json')).stdout) as {
      digest: string;
    }[];
    await writeFile(join(root, 'blobs', 'sha256', z!.digest.slice(7)), 'garbage');
    const r = await soci('ztoc', 'info', z!.digest, '--root', root);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/corrupt.*soci index rm/);
    const c = await soci('cat', `oci:${image.layout}:${image.tag}`, '/usr/share/big.txt', '--root', root);
    expect(c.code).toBe(1);
    expect(c.stderr).toMatch(/corrupt/);
  });

  it('a registry that is down', async () => {
    const down = await startRegistry();
    const target = await pushLayout({ layout: image.layout, tag: image.tag } as never, {
      host: down.host,
      repository: 'gone',
    });
    await down.stop();
    const root = await tempRoot();
    const r = await soci('create', target, '--root', root, ...BUILD);
    expect(r.code).toBe(1);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/registry|connect/i);
    await expectClean(root);
    expect(await readdir(join(root, 'ingest'))).toEqual([]);
    const d = await soci('create', target, '--root', root, '--debug', ...BUILD);
    expect(d.stderr.split('\n').length).toBeGreaterThan(2);
  });
});

describe('Ctrl-C', () => {
  it('stops soci create with its requests in flight: exit 130, one line, nothing stored', async () => {
    const proxy = await startFaultProxy(registry);
    try {
      const root = await tempRoot();
      const target = ref.replace(registry.host, proxy.host);
      // Every layer blob stalls after its first bytes: create waits inside a body read.
      proxy.inject(
        ...Array.from({ length: 8 }, () => ({
          kind: 'stall-body' as const,
          afterBytes: 1000,
          match: (method: string, path: string) => method === 'GET' && path.includes('/blobs/'),
        })),
      );
      const running = soci('create', target, '--root', root, '--plain-http', ...BUILD);
      for (let i = 0; i < 200 && !proxy.requests.some((r) => r.path.includes('/blobs/')); i++) {
        await new Promise((r) => setTimeout(r, 25));
      }
      await new Promise((r) => setTimeout(r, 100));
      const before = proxy.requests.length;
      process.emit('SIGINT', 'SIGINT');
      // The stalled body would fail only on the client's 10 s stall timeout; the abort must cut it
      // off long before (a generous bound, not a speed measurement).
      const r = await Promise.race([
        running,
        new Promise<never>((_, reject) => setTimeout(() => reject(new Error('create still running')), 5_000)),
      ]);
      expect(r.code).toBe(130);
      expect(r.stderr).toMatch(/^soci: create interrupted \(Ctrl-C\)\n$/);
      expect(proxy.requests.length).toBe(before); // no request started after the interrupt
      expect(JSON.parse((await sociOk('index', 'list', '--root', root, '--json')).stdout)).toEqual([]);
    } finally {
      await proxy.stop();
    }
  });
});
