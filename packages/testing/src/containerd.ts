// A private containerd for integration tests (the release under test, see containerd-release.ts):
// own root, state and sockets under a temp dir, a proxy snapshotter plugin pointing at the socket
// under test, CRI off unless asked for.
// Needs root and runc; containerd, ctr and containerd-shim-runc-v2 of the release.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ContainerdRelease, containerdUnderTest } from './containerd-release.js';
import { type RunResult, run, stopChild, waitUntil } from './process.js';

export interface ContainerdOptions {
  /** Unix socket of the proxy snapshotter (the daemon under test). */
  snapshotterSocket: string;
  /** Name of the proxy plugin, used as `--snapshotter NAME`. Default: soci. */
  snapshotterName?: string;
  /** Enable the CRI plugin, set up for a remote snapshotter (`snapshotter = NAME`, annotations passed on). */
  cri?: boolean;
  /** CRI only: registries (`host:port`) that CRI reaches over plain HTTP (a hosts.toml each). */
  plainHttpRegistries?: readonly string[];
  /** CRI only: the pod sandbox ("pause") image. Default: containerd's (registry.k8s.io, unreachable here). */
  sandboxImage?: string;
  /** containerd namespace for ctr(). Default: test. */
  namespace?: string;
  /** containerd log level. Default: info. */
  logLevel?: string;
  /** containerd 2.x CRI only: how CRI pulls. Default: SOCI_TS_CRI_PULL, else transfer. */
  criPull?: CriPullMode;
  /** Which containerd. Default: the release under test (SOCI_TS_CONTAINERD). */
  release?: ContainerdRelease;
}

export interface TestContainerd {
  /** The containerd release running. */
  release: ContainerdRelease;
  /** Temp directory holding root/, state/, config.toml, containerd.log and the sockets. */
  dir: string;
  /** containerd's gRPC socket. */
  address: string;
  namespace: string;
  snapshotterName: string;
  /** Path of containerd's own log (stdout and stderr). */
  logFile: string;
  /** Runs `ctr --address ADDRESS -n NAMESPACE ...args`; rejects with ctr's stderr on failure. */
  ctr(args: readonly string[], options?: { input?: string | Uint8Array }): Promise<RunResult>;
  /** Stops containerd and its shims, unmounts whatever is left below dir and deletes dir. */
  stop(): Promise<void>;
}

/** containerd's config for a private instance rooted in `dir`: version 2 for 1.x, version 3 for 2.x. */
export function containerdConfig(
  dir: string,
  options: ContainerdOptions,
  release: ContainerdRelease,
): string {
  const name = options.snapshotterName ?? 'soci';
  const v3 = release.major >= 2;
  // Without CRI its plugins stay off: fewer moving parts, a faster start.
  const criPlugins = v3
    ? ['io.containerd.grpc.v1.cri', 'io.containerd.cri.v1.images', 'io.containerd.cri.v1.runtime']
    : ['io.containerd.grpc.v1.cri'];
  const disabled = options.cri ? [] : criPlugins;
  const cri = options.cri ? (v3 ? criConfigV3(dir, name, options) : criConfigV2(dir, name, options)) : '';
  return `version = ${v3 ? 3 : 2}
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
disabled_plugins = [${disabled.map((p) => `"${p}"`).join(', ')}]

[grpc]
  address = "${join(dir, 'containerd.sock')}"

[ttrpc]
  address = "${join(dir, 'containerd.sock.ttrpc')}"

[debug]
  level = "${options.logLevel ?? 'info'}"

[metrics]
  address = ""

[proxy_plugins.${name}]
  type = "snapshot"
  address = "${options.snapshotterSocket}"
${
  v3
    ? `  # 2.x: the transfer service passes image and layer labels on Prepare only to snapshotters
  # that export this.
  [proxy_plugins.${name}.exports]
    enable_remote_snapshot_annotations = "true"
${transferConfigV3(dir, name)}`
    : ''
}${cri}`;
}

/** How containerd 2.x's CRI pulls: through the transfer service (2.1+ default) or the client-side pull. */
export type CriPullMode = 'transfer' | 'local';

/** Where CRI finds per-registry hosts.toml files (plain HTTP for the test registries). */
const registryHostsDir = (dir: string) => join(dir, 'certs.d');

/**
 * containerd 1.x's CRI section: pull into the proxy snapshotter with the layer annotations passed on
 * as snapshot labels. Inside a container a process may not lower its OOM score, so the adjustment is
 * clamped; CNI points at empty directories below `dir` (pods use host networking) so that CRI
 * creates nothing in /etc or /opt.
 */
function criConfigV2(dir: string, snapshotterName: string, options: ContainerdOptions): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  return `
[${cri}]
  restrict_oom_score_adj = true
${options.sandboxImage ? `  sandbox_image = "${options.sandboxImage}"\n` : ''}
[${cri}.containerd]
  snapshotter = "${snapshotterName}"
  disable_snapshot_annotations = false

[${cri}.cni]
  bin_dir = "${join(dir, 'cni', 'bin')}"
  conf_dir = "${join(dir, 'cni', 'net.d')}"

[${cri}.registry]
  config_path = "${registryHostsDir(dir)}"
`;
}

/**
 * containerd 2.x's transfer service (what `ctr image pull` and, since 2.1, CRI pull with): it
 * unpacks only into the snapshotters its unpack_config lists (overlayfs alone by default), and
 * passes image labels on Prepare to those exporting enable_remote_snapshot_annotations.
 */
function transferConfigV3(dir: string, snapshotterName: string): string {
  const transfer = "plugins.'io.containerd.transfer.v1.local'";
  const platform = `linux/${process.arch === 'x64' ? 'amd64' : process.arch}`;
  return `
[${transfer}]
  config_path = "${registryHostsDir(dir)}"
${['overlayfs', snapshotterName]
  .map(
    (snapshotter) => `
[[${transfer}.unpack_config]]
  platform = "${platform}"
  snapshotter = "${snapshotter}"
  differ = "walking"
`,
  )
  .join('')}`;
}

/**
 * containerd 2.x's CRI sections (config version 3): the image service picks the snapshotter and
 * pulls through the transfer service, or with `disable_snapshot_annotations = false` client-side,
 * as 1.x does.
 */
function criConfigV3(dir: string, snapshotterName: string, options: ContainerdOptions): string {
  const images = "plugins.'io.containerd.cri.v1.images'";
  const runtime = "plugins.'io.containerd.cri.v1.runtime'";
  const mode = options.criPull ?? criPullModeUnderTest();
  return `
[${images}]
  snapshotter = "${snapshotterName}"
${mode === 'local' ? '  disable_snapshot_annotations = false\n' : ''}
[${images}.pinned_images]
${options.sandboxImage ? `  sandbox = "${options.sandboxImage}"\n` : ''}
[${images}.registry]
  config_path = "${registryHostsDir(dir)}"

[${runtime}]
  restrict_oom_score_adj = true

[${runtime}.cni]
  bin_dirs = ["${join(dir, 'cni', 'bin')}"]
  conf_dir = "${join(dir, 'cni', 'net.d')}"

`;
}

/** SOCI_TS_CRI_PULL (transfer or local) for containerd 2.x's CRI; default transfer. */
export function criPullModeUnderTest(): CriPullMode {
  const mode = process.env.SOCI_TS_CRI_PULL ?? 'transfer';
  if (mode !== 'transfer' && mode !== 'local')
    throw new Error(`SOCI_TS_CRI_PULL=${mode}: use transfer or local`);
  return mode;
}

/** hosts.toml files that make containerd reach each registry (`host:port`) over plain HTTP. */
async function writeRegistryHosts(dir: string, hosts: readonly string[]): Promise<void> {
  for (const host of hosts) {
    const hostDir = join(registryHostsDir(dir), host);
    await mkdir(hostDir, { recursive: true });
    await writeFile(
      join(hostDir, 'hosts.toml'),
      `server = "http://${host}"\n\n[host."http://${host}"]\n  capabilities = ["pull", "resolve", "push"]\n`,
    );
  }
}

/** Pids of processes whose command line mentions `needle` (containerd's shims name its socket). */
async function pidsMentioning(needle: string): Promise<number[]> {
  const pids: number[] = [];
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = (await readFile(`/proc/${entry}/cmdline`, 'utf8')).split('\0').join(' ');
      if (cmdline.includes(needle)) pids.push(Number(entry));
    } catch {
      // the process ended meanwhile
    }
  }
  return pids;
}

/**
 * Kills the init process of every task left in containerd's state dir
 * (`io.containerd.runtime.v2.task/<namespace>/<id>/init.pid`) and drops its runc state, which
 * lives outside our dir (the runc shim's default root, /run/containerd/runc/<namespace>).
 */
async function killLeftTasks(state: string): Promise<void> {
  const tasks = join(state, 'io.containerd.runtime.v2.task');
  for (const namespace of await readdir(tasks).catch(() => [])) {
    for (const id of await readdir(join(tasks, namespace)).catch(() => [])) {
      const pid = Number(await readFile(join(tasks, namespace, id, 'init.pid'), 'utf8').catch(() => ''));
      if (pid > 0) {
        try {
          process.kill(pid, 'SIGKILL');
        } catch {}
      }
      const runcRoot = join('/run/containerd/runc', namespace);
      await run('runc', ['--root', runcRoot, 'delete', '--force', id]).catch(() => undefined);
    }
  }
}

/** Mount targets below `dir`, deepest first, as findmnt lists them. */
export async function mountsBelow(dir: string): Promise<string[]> {
  const { stdout } = await run('findmnt', ['-rn', '-o', 'TARGET']).catch(() => ({ stdout: '' }));
  return stdout
    .split('\n')
    .map((line) =>
      line.replace(/\\x([0-9a-f]{2})/gi, (_, h: string) => String.fromCharCode(Number.parseInt(h, 16))),
    )
    .filter((target) => target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length);
}

/** Lazily unmounts everything mounted below `dir` (container rootfs, overlay or FUSE layers). */
export async function unmountAllBelow(dir: string): Promise<void> {
  for (const target of await mountsBelow(dir)) {
    await run('umount', ['-l', target]).catch(() => undefined);
  }
}

/** Starts containerd as root with a config that points the proxy plugin at `snapshotterSocket`. */
export async function startContainerd(options: ContainerdOptions): Promise<TestContainerd> {
  const dir = await mkdtemp(join(tmpdir(), 'ctd-'));
  const address = join(dir, 'containerd.sock');
  const configPath = join(dir, 'config.toml');
  const logFile = join(dir, 'containerd.log');
  const namespace = options.namespace ?? 'test';
  const snapshotterName = options.snapshotterName ?? 'soci';
  const release = options.release ?? containerdUnderTest();
  await writeFile(configPath, containerdConfig(dir, options, release));
  await writeRegistryHosts(dir, options.plainHttpRegistries ?? []);

  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn(release.containerd, ['--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, PATH: release.path },
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);

  const ctr = (args: readonly string[], opts: { input?: string | Uint8Array } = {}) =>
    run(release.ctr, ['--address', address, '-n', namespace, ...args], opts);

  const stop = async () => {
    await stopChild(child, 10_000);
    // Containers a test left running (a failed cleanup, CRI pods) would outlive their killed shims.
    await killLeftTasks(join(dir, 'state'));
    // Shims outlive containerd by design; they are ours because their command line names our socket.
    for (const pid of await pidsMentioning(address)) {
      try {
        process.kill(pid, 'SIGKILL');
      } catch {}
    }
    await unmountAllBelow(dir);
    await new Promise<void>((resolve) => log.end(resolve));
    await rm(dir, { recursive: true, force: true }).catch(() => undefined);
  };

  try {
    await waitUntil(
      'containerd',
      async () => {
        await stat(address);
        await ctr(['version']);
        return true;
      },
      30_000,
      child,
    );
  } catch (err) {
    const tail = (await readFile(logFile, 'utf8').catch(() => '')).split('\n').slice(-20).join('\n');
    await stop();
    throw new Error(`${(err as Error).message}\ncontainerd log:\n${tail}`);
  }
  return { release, dir, address, namespace, snapshotterName, logFile, ctr, stop };
}

/** A daemon run as a child process (e.g. `node dist/bin.js --config FILE`), ready once its socket exists. */
export interface ChildDaemon {
  child: ChildProcess;
  /** Everything it printed so far (stdout and stderr). */
  output(): string;
  /** SIGTERM, then SIGKILL after `graceMs`. */
  stop(graceMs?: number): Promise<void>;
}

export async function startSocketDaemon(
  command: string,
  args: readonly string[],
  socket: string,
  timeoutMs = 30_000,
): Promise<ChildDaemon> {
  const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  child.stderr?.on('data', (b: Buffer) => {
    output += b.toString();
  });
  const daemon: ChildDaemon = {
    child,
    output: () => output,
    stop: (graceMs = 10_000) => stopChild(child, graceMs),
  };
  try {
    await waitUntil(
      `${command} ${args.join(' ')}`,
      async () => (await stat(socket)).isSocket(),
      timeoutMs,
      child,
    );
  } catch (err) {
    await daemon.stop();
    throw new Error(`${(err as Error).message}\n${output}`);
  }
  return daemon;
}
