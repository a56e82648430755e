// A private containerd 1.6 for integration tests: own root, state and sockets under a temp dir, a
// proxy snapshotter plugin pointing at the socket under test, CRI off unless asked for.
// Needs root, containerd, ctr, runc and containerd-shim-runc-v2 on PATH.
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type RunResult, run, stopChild, waitUntil } from './process.js';

export interface ContainerdOptions {
  /** Unix socket of the proxy snapshotter (the daemon under test). */
  snapshotterSocket: string;
  /** Name of the proxy plugin, used as `--snapshotter NAME`. Default: soci. */
  snapshotterName?: string;
  /** Enable the CRI plugin, set up for a remote snapshotter (`snapshotter = NAME`, annotations passed on). */
  cri?: boolean;
  /** CRI only: registries (`host:port`) that CRI reaches over plain HTTP, each its own mirror. */
  plainHttpRegistries?: readonly string[];
  /** CRI only: the pod sandbox ("pause") image. Default: containerd's (registry.k8s.io, unreachable here). */
  sandboxImage?: string;
  /** containerd namespace for ctr(). Default: test. */
  namespace?: string;
  /** containerd log level. Default: info. */
  logLevel?: string;
}

export interface TestContainerd {
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

/** containerd's config (version 2) for a private instance rooted in `dir`. */
export function containerdConfig(dir: string, options: ContainerdOptions): string {
  const name = options.snapshotterName ?? 'soci';
  const cri = options.cri ? criConfig(dir, name, options) : '';
  return `version = 2
root = "${join(dir, 'root')}"
state = "${join(dir, 'state')}"
disabled_plugins = [${options.cri ? '' : '"io.containerd.grpc.v1.cri"'}]

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
${cri}`;
}

/**
 * The CRI plugin's section: pull into the proxy snapshotter with the layer annotations passed on as
 * snapshot labels. Inside a container a process may not lower its OOM score, so the adjustment is
 * clamped; CNI points at empty directories below `dir` (pods use host networking) so that CRI
 * creates nothing in /etc or /opt.
 */
function criConfig(dir: string, snapshotterName: string, options: ContainerdOptions): string {
  const cri = 'plugins."io.containerd.grpc.v1.cri"';
  const mirrors = (options.plainHttpRegistries ?? []).map(
    (host) => `
[${cri}.registry.mirrors."${host}"]
  endpoint = ["http://${host}"]
`,
  );
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
${mirrors.join('')}`;
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
  await writeFile(configPath, containerdConfig(dir, options));

  const log = createWriteStream(logFile);
  const child: ChildProcess = spawn('containerd', ['--config', configPath], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout?.pipe(log);
  child.stderr?.pipe(log);

  const ctr = (args: readonly string[], opts: { input?: string | Uint8Array } = {}) =>
    run('ctr', ['--address', address, '-n', namespace, ...args], opts);

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
  return { dir, address, namespace, snapshotterName, logFile, ctr, stop };
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
