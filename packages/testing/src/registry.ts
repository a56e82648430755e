import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort, run, stopChild, waitUntil } from './process.js';

/** A registry server running on loopback for one test file. */
export interface TestRegistry {
  /** `127.0.0.1:<port>`, the registry part of image references. */
  host: string;
  /** `http://127.0.0.1:<port>` */
  url: string;
  stop(): Promise<void>;
}

/** A registry run as a process of its own, which a test can also hang. */
export interface RegistryProcess extends TestRegistry {
  /**
   * Stops the registry process (SIGSTOP) without closing its socket: connections are accepted by
   * the kernel and never answered, as with a hung registry. `thaw` lets it go on.
   */
  freeze(): void;
  thaw(): void;
}

/** freeze/thaw/stop of a registry child process; stop thaws first (a stopped process ignores SIGTERM). */
function processControls(child: ChildProcess): Pick<RegistryProcess, 'freeze' | 'thaw' | 'stop'> {
  const thaw = () => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGCONT');
  };
  return {
    freeze: () => child.kill('SIGSTOP'),
    thaw,
    stop: async () => {
      thaw();
      await stopChild(child);
    },
  };
}

export interface StartRegistryOptions {
  /** Protect the registry with HTTP basic auth (docker-registry's htpasswd, bcrypt). */
  htpasswd?: { user: string; password: string };
}

const DOCKER_REGISTRY = '/usr/bin/docker-registry';
const REPO_ROOT = resolve(fileURLToPath(new URL('.', import.meta.url)), '../../..');

/**
 * Starts Debian's `docker-registry` (distribution 2.8: OCI manifests, range GETs, chunked uploads,
 * cross-repository mounts, no referrers API) with its own config and storage in a temp directory.
 */
export async function startRegistry(options: StartRegistryOptions = {}): Promise<RegistryProcess> {
  if (!existsSync(DOCKER_REGISTRY)) throw new Error(`${DOCKER_REGISTRY} is missing: run scripts/setup`);
  const dir = await mkdtemp(join(tmpdir(), 'soci-registry-'));
  const port = await freePort();
  const lines = [
    'version: 0.1',
    'log: { level: error, accesslog: { disabled: true } }',
    `storage: { filesystem: { rootdirectory: ${join(dir, 'storage')} }, delete: { enabled: true } }`,
    `http: { addr: "127.0.0.1:${port}", secret: soci-ts-test-secret }`,
  ];
  if (options.htpasswd) {
    const file = join(dir, 'htpasswd');
    await writeFile(file, `${options.htpasswd.user}:${await bcryptHash(options.htpasswd.password)}\n`);
    lines.push(`auth: { htpasswd: { realm: soci-ts-test, path: ${file} } }`);
  }
  await writeFile(join(dir, 'config.yml'), `${lines.join('\n')}\n`);
  const child = spawn(DOCKER_REGISTRY, ['serve', join(dir, 'config.yml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = captureTail(child);
  const url = `http://127.0.0.1:${port}`;
  try {
    await waitUntil(
      'docker-registry',
      async () => [200, 401].includes((await fetch(`${url}/v2/`)).status),
      15_000,
      child,
    );
  } catch (e) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}; stderr: ${stderr()}`);
  }
  const controls = processControls(child);
  return {
    host: `127.0.0.1:${port}`,
    url,
    ...controls,
    async stop() {
      await controls.stop();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/**
 * Starts an in-memory registry that implements the OCI referrers API (go-containerregistry's registry,
 * built by scripts/install-go-tools, which this runs first when the binary is missing). It answers a
 * manifest push with a `subject` with `OCI-Subject`, and does not filter referrers by artifactType.
 */
export async function startReferrersRegistry(): Promise<RegistryProcess> {
  const binary = await referrersRegistryBinary();
  const child = spawn(binary, ['-addr', '127.0.0.1:0'], { stdio: ['ignore', 'pipe', 'pipe'] });
  const stderr = captureTail(child);
  const host = await new Promise<string>((resolveHost, reject) => {
    let out = '';
    const timer = setTimeout(
      () => reject(new Error(`referrers-registry did not start: ${stderr()}`)),
      15_000,
    );
    child.stdout!.on('data', (b: Buffer) => {
      out += b.toString();
      const m = /listening on (127\.0\.0\.1:\d+)/.exec(out);
      if (m) {
        clearTimeout(timer);
        resolveHost(m[1]!);
      }
    });
    child.on('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`referrers-registry exited with ${code}: ${stderr()}`));
    });
  });
  child.stdout!.resume();
  return { host, url: `http://${host}`, ...processControls(child) };
}

async function referrersRegistryBinary(): Promise<string> {
  const dir = process.env.SOCI_TS_GO_BIN ?? '/opt/soci-ts/bin';
  const binary = join(dir, 'referrers-registry');
  if (!existsSync(binary)) await run('bash', [join(REPO_ROOT, 'scripts/install-go-tools')]);
  if (!existsSync(binary)) throw new Error(`${binary} is missing after scripts/install-go-tools`);
  return binary;
}

/** bcrypt for htpasswd: Apache's `htpasswd` when installed, else python3's crypt (glibc/libxcrypt bcrypt). */
async function bcryptHash(password: string): Promise<string> {
  if (existsSync('/usr/bin/htpasswd')) {
    const { stdout } = await run('/usr/bin/htpasswd', ['-niB', '-C', '5', 'user'], {
      input: `${password}\n`,
    });
    return stdout.trim().split(':').slice(1).join(':');
  }
  const script =
    'import crypt,sys\nprint(crypt.crypt(sys.stdin.read(), crypt.mksalt(crypt.METHOD_BLOWFISH, rounds=32)))';
  const { stdout } = await run('python3', ['-W', 'ignore', '-c', script], { input: password });
  const hash = stdout.trim();
  if (!hash.startsWith('$2')) throw new Error('python3 crypt gave no bcrypt hash: install apache2-utils');
  return hash;
}

function captureTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => {
    tail = (tail + b.toString()).slice(-4000);
  });
  return () => tail.trim();
}
