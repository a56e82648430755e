// The published packages as a new user gets them: the `pnpm pack` tarballs (what `pnpm publish`
// uploads) installed with npm into empty directories, with no workspace and no pnpm around, then
// used through their bins, `import` and `require`. Needs the packages built (`pnpm build`) and
// the npm registry for their third-party dependencies.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { delimiter, join } from 'node:path';
import { type BuiltImage, pushImage } from '@soci-ts/testing/images';
import { run } from '@soci-ts/testing/process';
import { type RegistryProcess, startRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/stack.js';

/** The public libraries (folder under packages/) and one name each must export. */
const LIBRARIES = {
  errors: 'SociError',
  'seekable-gzip': 'CheckpointBuilder',
  ztoc: 'decodeZtoc',
  'oci-referrers': 'RegistryClient',
  'soci-index': 'buildSociIndex',
  'lazy-fs': 'mountRemoteLayer',
  'containerd-client': 'ContainerdClient',
  snapshotter: 'startSnapshotter',
} as const;

let work: string;
/** Tarball path by package folder (`cli` and the libraries). */
const tarballs = new Map<string, string>();

/**
 * The environment of a user's shell: none of the npm_* / pnpm settings that `pnpm exec` hands its
 * children, and no node_modules/.bin of this workspace on the PATH.
 */
function userEnv(): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [key, value] of Object.entries(process.env)) {
    if (!/^(npm_|pnpm_|PNPM_|INIT_CWD$|NODE_OPTIONS$|NODE_PATH$)/i.test(key)) env[key] = value;
  }
  env.PATH = (process.env.PATH ?? '')
    .split(delimiter)
    .filter((dir) => !dir.includes('node_modules'))
    .join(delimiter);
  env.NO_UPDATE_NOTIFIER = '1';
  return env;
}

/** An empty project directory (a package.json only, as `npm init` leaves it) with `tgzs` installed by npm. */
async function npmProject(name: string, tgzs: string[]): Promise<string> {
  const dir = join(work, name);
  await mkdir(dir);
  await writeFile(
    join(dir, 'package.json'),
    `${JSON.stringify({ name, private: true, version: '1.0.0' })}\n`,
  );
  await run('npm', ['install', '--no-audit', '--no-fund', '--prefer-offline', ...tgzs], {
    cwd: dir,
    env: userEnv(),
  });
  return dir;
}

/**
 * Runs a bin of the project's node_modules as a user would, with `npx`; `--no`: never one fetched
 * from npm (a missing bin fails), `--`: every argument goes to the bin, none to npm. Within 90 s:
 * `timeout` ends the whole process group of one that hangs (a daemon that lost its flags).
 */
const npx = (dir: string, args: string[]) =>
  run('timeout', ['--kill-after=5', '90', 'npx', '--no', '--', ...args], { cwd: dir, env: userEnv() });

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'soci-pack-'));
  const packs = join(work, 'tarballs');
  await mkdir(packs);
  for (const folder of ['cli', ...Object.keys(LIBRARIES)]) {
    const dir = join(REPO_ROOT, 'packages', folder);
    if (!existsSync(join(dir, 'dist', 'index.js'))) {
      throw new Error(`packages/${folder}/dist is missing: run \`pnpm build\` first`);
    }
    const before = new Set(await readdir(packs));
    await run('pnpm', ['pack', '--pack-destination', packs], { cwd: dir });
    const added = (await readdir(packs)).filter((f) => !before.has(f));
    expect(added, `pnpm pack in packages/${folder}`).toHaveLength(1);
    tarballs.set(folder, join(packs, added[0]!));
  }
});
afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

/** The manifest of an installed package. */
async function installedManifest(dir: string, name: string): Promise<Record<string, unknown>> {
  return JSON.parse(await readFile(join(dir, 'node_modules', name, 'package.json'), 'utf8'));
}

/** What npm shows of a package and what a scoped package needs to be published public. */
function expectCompleteMetadata(manifest: Record<string, unknown>, folder: string): void {
  const https = expect.stringMatching(/^https:\/\//);
  expect(manifest, folder).toMatchObject({
    description: expect.any(String),
    keywords: expect.arrayContaining([expect.any(String)]),
    homepage: https,
    bugs: { url: https },
    repository: {
      type: 'git',
      url: 'git+https://github.com/soci-ts/soci-ts.git',
      directory: `packages/${folder}`,
    },
    license: 'Apache-2.0',
    author: expect.any(String),
    engines: { node: expect.any(String) },
    publishConfig: { access: 'public' },
  });
  expect(JSON.stringify(manifest.dependencies ?? {}), folder).not.toContain('workspace:');
}

describe('soci-cli from its tarball alone (npm install soci-cli-<version>.tgz)', () => {
  let dir: string;
  let registry: RegistryProcess | undefined;
  let image: (BuiltImage & { reference: string }) | undefined;
  const text = 'a line of the image, read through its SOCI index\n'.repeat(4000); // 196 KB

  beforeAll(async () => {
    dir = await npmProject('cli-user', [tarballs.get('cli')!]);
    registry = await startRegistry();
    image = await pushImage({
      host: registry.host,
      repository: 'pack/app',
      tag: '1',
      layers: [{ '/etc/greeting': 'hello from a packed soci\n' }, { '/usr/share/text.txt': text }],
    });
  }, 120_000);
  afterAll(async () => {
    await registry?.stop();
    await image?.cleanup();
  });

  it('installs with its one runtime dependency: no @soci-ts packages, no source maps, the protos', async () => {
    const manifest = await installedManifest(dir, 'soci-cli');
    expectCompleteMetadata(manifest, 'cli');
    expect(Object.keys(manifest.dependencies as object)).toEqual(['commander']);
    expect(existsSync(join(dir, 'node_modules', '@soci-ts'))).toBe(false);
    const files = await readdir(join(dir, 'node_modules', 'soci-cli'), { recursive: true });
    expect(files.filter((f) => f.endsWith('.map'))).toEqual([]);
    expect(files).toContain('proto/github.com/containerd/containerd/api/services/content/v1/content.proto');
  });

  /** `npx soci <args>` in the project. */
  const soci = async (...args: string[]) => (await npx(dir, ['soci', ...args])).stdout;

  it('npx soci --help and --version', async () => {
    const help = await soci('--help');
    expect(help).toMatch(/^Usage: soci /);
    for (const command of ['create', 'push', 'convert', 'cat', 'pull']) expect(help).toContain(`${command} `);
    expect((await soci('--version')).trim()).toBe((await installedManifest(dir, 'soci-cli')).version);
  });

  it('npx soci create, then soci cat reads files back through the index', async () => {
    const root = ['--root', join(work, 'cli-store')];
    const ref = image!.reference;
    const build = ['--min-layer-size', '0', '--span-size', '65536', '--quiet'];
    await soci('create', ref, ...build, '--plain-http', ...root);
    const ztocs = JSON.parse(await soci('ztoc', 'list', '--json', ...root)) as { digest: string }[];
    expect(ztocs).toHaveLength(2);
    const info = async (digest: string) => JSON.parse(await soci('ztoc', 'info', digest, ...root));
    const spans = await Promise.all(ztocs.map(async (z) => (await info(z.digest)).num_spans as number));
    expect(Math.max(...spans)).toBeGreaterThan(1); // so text.txt is read across spans
    const cat = (path: string) => soci('cat', ref, path, '--plain-http', ...root);
    expect(await cat('/etc/greeting')).toBe('hello from a packed soci\n');
    expect(await cat('/usr/share/text.txt')).toBe(text);
  });

  it('soci pull loads its bundled containerd client and protos (and says containerd is not running)', async () => {
    const socket = join(work, 'no-containerd.sock');
    const target = ['--plain-http', image!.reference, '--snapshotter', 'overlayfs'];
    const pull = soci('pull', '--address', socket, ...target);
    await expect(pull).rejects.toThrow(new RegExp(`containerd at ${socket}`));
  });
});

describe('the libraries from their tarballs, installed together', () => {
  let dir: string;

  beforeAll(async () => {
    const libraries = Object.keys(LIBRARIES).map((folder) => tarballs.get(folder)!);
    dir = await npmProject('library-user', libraries);
  }, 120_000);

  /** What `import` or `require` of each library gives: the type of its expected export, or the error. */
  async function load(how: 'import' | 'require'): Promise<Record<string, string>> {
    const script = `
      const names = ${JSON.stringify(LIBRARIES)};
      const out = {};
      for (const [folder, name] of Object.entries(names)) {
        const id = '@soci-ts/' + folder;
        try {
          const m = ${how === 'import' ? 'await import(id)' : 'require(id)'};
          out[folder] = typeof m[name];
        } catch (err) {
          out[folder] = String(err.code ?? err.message);
        }
      }
      console.log(JSON.stringify(out));`;
    const args = how === 'import' ? ['--input-type=module', '-e', script] : ['-e', script];
    const { stdout } = await run('node', args, { cwd: dir, env: userEnv() });
    return JSON.parse(stdout);
  }

  it('manifests: complete metadata, versions in place of workspace:*', async () => {
    for (const folder of Object.keys(LIBRARIES)) {
      expectCompleteMetadata(await installedManifest(dir, `@soci-ts/${folder}`), folder);
    }
  });

  // `node -e "require('@soci-ts/ztoc')"` failed with ERR_PACKAGE_PATH_NOT_EXPORTED (no `default`).
  it.each(['require', 'import'] as const)('%s of each library gives its exports', async (how) => {
    const loaded = await load(how);
    const expected = Object.fromEntries(Object.keys(LIBRARIES).map((folder) => [folder, 'function']));
    expect(loaded).toEqual(expected);
  });

  it("the snapshotter's bins run: soci-snapshotter --print-config, soci-fuse-keeper --help", async () => {
    // Paths of this test's own, so that not even a daemon started by mistake touches the machine's.
    const root = join(work, 'snapshotter-root');
    const config = join(work, 'snapshotter.toml');
    const toml = [
      `root = "${root}"`,
      `socket = "${join(work, 'snapshotter.sock')}"`,
      `containerd_address = "${join(work, 'containerd.sock')}"`,
      'metrics_address = ""',
      '[fuse_keeper]',
      `socket = "${join(work, 'keeper.sock')}"`,
      'start = false',
    ];
    await writeFile(config, `${toml.join('\n')}\n`);
    const printed = (await npx(dir, ['soci-snapshotter', '--config', config, '--print-config'])).stdout;
    expect(printed).toContain(`root = "${root}"`);
    const keeper = ['soci-fuse-keeper', '--socket', join(work, 'keeper.sock'), '--help'];
    expect((await npx(dir, keeper)).stdout).toMatch(/^usage: soci-fuse-keeper/);
  });
});
