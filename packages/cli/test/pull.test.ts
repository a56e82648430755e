// `soci pull` against a real containerd (the release under test) and registry. The soci daemon is tested in its own
// package; here the pull goes to overlayfs (every layer unpacked) and a container runs from it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { startFaultProxy } from '@soci-ts/testing/http-proxy';
import { pushLayout } from '@soci-ts/testing/images';
import { run } from '@soci-ts/testing/process';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { bufferIo, main } from '../src/index.js';
import { soci, tempRoot } from './helpers.js';

const NS = 'soci-cli-pull';
const HELLO = 'hi from the image\n';

let ctd: TestContainerd;
let registry: TestRegistry;
let ref: string;
let manifestDigest: string;

beforeAll(async () => {
  [ctd, registry] = await Promise.all([
    // The soci proxy plugin is configured, but nothing serves its socket.
    startContainerd({ snapshotterSocket: '/nonexistent/soci.sock', namespace: NS }),
    startRegistry(),
  ]);
  const image = await buildBusyboxImage([{ '/bin/busybox': { busybox: true } }, { '/hello.txt': HELLO }]);
  try {
    ref = await pushLayout(image, { host: registry.host, repository: 'cli/pull', tag: 'v1' });
    manifestDigest = image.manifestDigest;
  } finally {
    await image.cleanup();
  }
}, 60_000);

afterAll(async () => {
  await Promise.all([ctd?.stop(), registry?.stop()]);
});

const pull = (...args: string[]) => soci('pull', '--address', ctd.address, '-n', NS, '--plain-http', ...args);

describe('soci pull --snapshotter overlayfs', () => {
  it('pulls every layer, reports it as JSON, and the image runs', async () => {
    const r = await pull(ref, '--snapshotter', 'overlayfs', '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.name).toBe(ref);
    expect(report.manifest.digest).toBe(manifestDigest);
    expect(report.snapshotter).toBe('overlayfs');
    expect(report.layers.map((l: { mode: string }) => l.mode)).toEqual(['unpacked', 'unpacked']);
    const layerBytes = report.layers.reduce((n: number, l: { size: number }) => n + l.size, 0);
    expect(report.layers.map((l: { bytesFetched: number }) => l.bytesFetched)).toEqual(
      report.layers.map((l: { size: number }) => l.size),
    );
    expect(report.bytesFetched).toBeGreaterThan(layerBytes); // plus manifest and config

    const images = (await ctd.ctr(['image', 'ls', '-q'])).stdout.split('\n');
    expect(images).toContain(ref);
    const run = await ctd.ctr([
      'run',
      '--rm',
      '--snapshotter',
      'overlayfs',
      ref,
      `pull-${randomBytes(4).toString('hex')}`,
      '/bin/busybox',
      'cat',
      '/hello.txt',
    ]);
    expect(run.stdout).toBe(HELLO);
  });

  it('a second pull finds the layers present; text output is one total line, layer lines on a TTY', async () => {
    const plain = await pull(ref, '--snapshotter', 'overlayfs');
    expect(plain.code).toBe(0);
    expect(plain.stdout).toMatch(
      new RegExp(
        `^pulled ${ref.replace(/[.]/g, '\\.')}: 2 layers \\(0 remote, 0 unpacked, 2 present\\), \\d+(\\.\\d)? k?B fetched in \\d+\\.\\ds\\n$`,
      ),
    );

    const io = bufferIo({ isTTY: true });
    const code = await main(
      ['pull', '--address', ctd.address, '-n', NS, '--plain-http', ref, '--snapshotter', 'overlayfs'],
      io,
    );
    expect(code).toBe(0);
    const lines = io.stdout.trimEnd().split('\n');
    expect(lines).toHaveLength(3);
    for (const line of lines.slice(0, 2))
      expect(line).toMatch(/^[0-9a-f]{12} {2}present .* 0 B +\d+\.\d\ds$/);
    expect(io.stderr).toContain(`pulling ${ref}`);

    const quiet = await pull(ref, '--snapshotter', 'overlayfs', '--quiet');
    expect(quiet).toMatchObject({ code: 0, stdout: '', stderr: '' });
  });
});

describe('soci pull errors: one line that says what to fix', () => {
  const expectOneLineError = (
    r: { code: number; stdout: string; stderr: string },
    pattern: RegExp,
    exitCode = 1,
  ) => {
    expect(r.code).toBe(exitCode);
    expect(r.stdout).toBe('');
    expect(r.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(pattern);
  };

  it('containerd not running: names the socket', async () => {
    const socket = join(tmpdir(), `no-containerd-${randomBytes(4).toString('hex')}.sock`);
    const r = await soci('pull', '--address', socket, '--plain-http', ref, '--snapshotter', 'overlayfs');
    expectOneLineError(r, new RegExp(`cannot reach containerd at ${socket}; containerd must be running`));
  });

  it('containerd not running, from a command that reads images from it: plain words, no gRPC text', async () => {
    const socket = join(tmpdir(), `no-containerd-${randomBytes(4).toString('hex')}.sock`);
    const r = await soci(
      'create',
      'example.com/app:v1',
      '--containerd-address',
      socket,
      '--root',
      await tempRoot(),
    );
    expectOneLineError(
      r,
      new RegExp(
        `^soci: cannot reach containerd at ${socket} \\(no socket at that path\\); is containerd running`,
      ),
    );
    expect(r.stderr).not.toMatch(/No connection established|Resolution note|images\.Get/);
  });

  it('image not in the registry', async () => {
    const r = await pull(`${registry.host}/cli/absent:v1`, '--snapshotter', 'overlayfs');
    expectOneLineError(r, /image .*\/cli\/absent:v1 not found in the registry; check/);
  });

  it('snapshotter containerd does not know: says to add the proxy_plugins section', async () => {
    const r = await pull(ref, '--snapshotter', 'nosuch');
    expectOneLineError(r, /no snapshotter "nosuch"; add a proxy_plugins section .*\[proxy_plugins\.nosuch\]/);
  });

  it('snapshotter configured but its daemon not running', async () => {
    const r = await pull(ref);
    expectOneLineError(
      r,
      /cannot reach snapshotter "soci" at \/nonexistent\/soci\.sock: is soci-snapshotter running/,
    );
  });

  it('--no-unpack-fallback refuses a layer the snapshotter does not mount', async () => {
    const other = await buildBusyboxImage([{ '/bin/busybox': { busybox: true } }, { '/other.txt': 'x' }]);
    let otherRef: string;
    try {
      otherRef = await pushLayout(other, { host: registry.host, repository: 'cli/nofallback', tag: 'v1' });
    } finally {
      await other.cleanup();
    }
    // Layer 0 (busybox) is present from the first test; layer 1 is new and overlayfs never mounts remotely.
    const r = await pull(otherRef, '--snapshotter', 'overlayfs', '--no-unpack-fallback');
    expectOneLineError(r, /did not mount layer .* remotely and unpackFallback is off/);
    const images = (await ctd.ctr(['image', 'ls', '-q'])).stdout;
    expect(images).not.toContain(otherRef);
  });

  it('bad --soci-index-digest is a usage error before anything is contacted', async () => {
    const r = await soci('pull', ref, '--address', '/nonexistent.sock', '--soci-index-digest', 'abc');
    expectOneLineError(r, /--soci-index-digest takes a digest/, 2);
  });
});

describe('built bin (pnpm --filter soci-cli build)', () => {
  const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
  const binPull = (namespace: string, ...args: string[]) => [
    'pull',
    '--address',
    ctd.address,
    '-n',
    namespace,
    '--plain-http',
    '--snapshotter',
    'overlayfs',
    ...args,
  ];

  it.skipIf(!existsSync(bin))('pulls with the bundled containerd client and its protos', async () => {
    const { stdout } = await run('node', [bin, ...binPull('soci-cli-bin', ref, '--json')]);
    const report = JSON.parse(stdout);
    expect(report.manifest.digest).toBe(manifestDigest);
    expect(report.layers.map((l: { mode: string }) => l.mode)).toEqual(['unpacked', 'unpacked']);
  });

  it.skipIf(!existsSync(bin))(
    'Ctrl-C during a layer download stops the pull and records nothing',
    async () => {
      const proxy = await startFaultProxy(registry);
      try {
        const manifest = (await (
          await fetch(`${registry.url}/v2/cli/pull/manifests/v1`, {
            headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
          })
        ).json()) as { layers: { digest: string }[] };
        const layer = manifest.layers[0]!.digest;
        proxy.inject({
          kind: 'stall-body',
          afterBytes: 1000,
          match: (m, path) => m === 'GET' && path.includes(layer),
        });
        const proxiedRef = `${proxy.host}/cli/pull:v1`;
        const child = spawn('node', [bin, ...binPull('soci-cli-sigint', proxiedRef)], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (b: Buffer) => {
          stderr += b;
        });
        const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)));
        // Wait until the stalled layer download is under way.
        for (let i = 0; i < 200 && !proxy.requests.some((r) => r.path.includes(layer)); i++) {
          await new Promise((r) => setTimeout(r, 50));
        }
        expect(proxy.requests.some((r) => r.path.includes(layer))).toBe(true);
        await new Promise((r) => setTimeout(r, 200));
        child.kill('SIGINT');
        // The stalled body would only fail on the HTTP client's 30 s body timeout; the abort must
        // cut it off long before (a generous bound, not a speed measurement).
        const code = await Promise.race([
          exited,
          new Promise((r) => setTimeout(() => r('still running'), 15_000)),
        ]);
        child.kill('SIGKILL');
        expect(code).toBe(130);
        expect(stderr.trimEnd().split('\n')).toHaveLength(1);
        expect(stderr).toMatch(/pull of .* interrupted; nothing was recorded/);
        const images = await ctd
          .ctr(['-n', 'soci-cli-sigint', 'image', 'ls', '-q'])
          .catch(() => ({ stdout: '' }));
        expect(images.stdout).not.toContain(proxiedRef);
      } finally {
        await proxy.stop();
      }
    },
  );
});
