// The whole run path on loopback for e2e tests: a registry, our snapshotter daemon (the built
// bin, in its own process: a FUSE server must never be read from its own process), containerd
// with the daemon as its `soci` proxy plugin, and the built `soci` CLI.
import { existsSync } from 'node:fs';
import { cp, mkdir, mkdtemp, readdir, readFile, rm, rmdir, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { ContainerdClient, type PullReport, pullImage } from '@soci-ts/containerd-client';
import { RegistryClient } from '@soci-ts/oci-referrers';
import {
  type ChildDaemon,
  startContainerd,
  startSocketDaemon,
  type TestContainerd,
  unmountAllBelow,
} from '@soci-ts/testing/containerd';
import { freePort, type RunResult, run, waitUntil } from '@soci-ts/testing/process';
import { type RegistryProcess, startRegistry } from '@soci-ts/testing/registry';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');
export const SNAPSHOTTER_BIN = join(REPO_ROOT, 'packages/snapshotter/dist/bin.js');
export const SOCI_BIN = join(REPO_ROOT, 'packages/cli/dist/bin.js');
export const KEEPER_BIN = join(REPO_ROOT, 'packages/snapshotter/bin/soci-fuse-keeper.cjs');

export interface DaemonOptions {
  backgroundFetch?: boolean;
  /** How long background fetching waits for foreground reads to stop (TOML duration). */
  silencePeriod?: string;
  mountTimeout?: string;
  /** `read_timeout`: how long a read of unfetched data waits for the registry (TOML duration). */
  readTimeout?: string;
  /** `[prefetch] record_dir`: where the daemon records the paths containers read. */
  recordDir?: string;
  /** `[parallel_pull_unpack]` `enable` and `primary` (the daemon's defaults: true, false). */
  parallelPullUnpack?: { enable?: boolean; primary?: boolean };
}

export interface Stack {
  dir: string;
  registry: RegistryProcess;
  containerd: TestContainerd;
  daemon: ChildDaemon;
  metricsUrl: string;
  /** Runs the built `soci` CLI with a store of this stack. */
  soci(args: string[]): Promise<RunResult>;
  /** Pulls with the remote-snapshot labels through containerd into the `soci` snapshotter. */
  pull(ref: string, snapshotter?: string): Promise<PullReport>;
  /** `ctr run --rm` a command in a fresh container; resolves with its stdout. */
  runContainer(ref: string, command: string[], snapshotter?: string): Promise<string>;
  /** One counter or gauge of the daemon's /metrics, summed over its labels that match `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /**
   * Stops the daemon (SIGTERM, or `how`: SIGKILL, or a kill of every process in its cgroup as
   * systemd does on restart), runs `whileDown` (if given), starts it again (from `bin`: another
   * build) and waits for containerd to see it.
   */
  restartDaemon(whileDown?: () => Promise<void>, how?: DaemonStop, bin?: string): Promise<void>;
  /** The FUSE keeper: its own process, as its own systemd unit would be. */
  keeper: ChildDaemon;
  /** The daemon's span cache directory. */
  spanCacheDir: string;
  stop(): Promise<void>;
}

/** How a test ends the daemon: a clean stop, a crash, or its whole cgroup killed (systemctl restart). */
export type DaemonStop = 'SIGTERM' | 'SIGKILL' | 'cgroup';

let containerSeq = 0;

/** The daemon's config for a test stack: debug logs, metrics on a free port, the registry over HTTP. */
export function daemonConfig(
  dir: string,
  socket: string,
  metricsPort: number,
  registryHost: string,
  containerdAddress: string,
  options: DaemonOptions = {},
): string {
  return `root = "${join(dir, 'soci-root')}"
socket = "${socket}"
containerd_address = "${containerdAddress}"
log_level = "debug"
metrics_address = "127.0.0.1:${metricsPort}"
mount_timeout = "${options.mountTimeout ?? '60s'}"
read_timeout = "${options.readTimeout ?? '30s'}"

[registry.hosts."${registryHost}"]
plain_http = true

[span_cache]
dir = "${join(dir, 'span-cache')}"

[background_fetch]
enabled = ${options.backgroundFetch ?? true}
silence_period = "${options.silencePeriod ?? '30s'}"

[fuse_keeper]
socket = "${keeperSocket(dir)}"
start = false
wait_for_daemon = "120s"
${options.recordDir ? `\n[prefetch]\nrecord_dir = "${options.recordDir}"\n` : ''}${parallelPullUnpack(options)}`;
}

function parallelPullUnpack({ parallelPullUnpack: p }: DaemonOptions): string {
  if (!p) return '';
  const lines = Object.entries(p).map(([key, value]) => `${key} = ${value}`);
  return `\n[parallel_pull_unpack]\n${lines.join('\n')}\n`;
}

/**
 * Waits until containerd reaches the daemon: it redials a proxy plugin with exponential backoff
 * (grpc-go: up to 2 minutes), and until then calls fail fast ("Error while dialing"). Listing
 * snapshots is no probe (containerd answers it from its own metadata): a Prepare is.
 */
export async function waitForContainerd(containerd: TestContainerd): Promise<void> {
  let attempt = 0;
  await waitUntil(
    'containerd to reach the snapshotter daemon',
    async () => {
      // A key of its own each time: a try whose rm failed must not make the next one collide.
      const probe = `stack-probe-${process.pid}-${++attempt}`;
      await containerd.ctr(['snapshots', '--snapshotter', 'soci', 'prepare', probe]);
      await containerd.ctr(['snapshots', '--snapshotter', 'soci', 'rm', probe]);
      return true;
    },
    150_000,
  );
}

/** The start line of the daemon build `nextDaemonBuild` makes. */
export const NEXT_BUILD_STARTED = 'soci-snapshotter started (next build)';
let nextBuildSeq = 0;

/**
 * Another build of the daemon, as an upgrade brings: a copy of the bundle at another path whose
 * start line says "(next build)" (bare imports still resolve through the package's node_modules).
 */
export async function nextDaemonBuild(): Promise<{ bin: string; remove(): Promise<void> }> {
  const dir = join(REPO_ROOT, 'packages/snapshotter', `.next-build-${process.pid}-${++nextBuildSeq}`);
  await rm(dir, { recursive: true, force: true });
  await cp(dirname(SNAPSHOTTER_BIN), dir, { recursive: true });
  for (const file of await readdir(dir)) {
    if (!file.endsWith('.js')) continue;
    const text = await readFile(join(dir, file), 'utf8');
    const marked = text
      .replaceAll("'soci-snapshotter started'", `'${NEXT_BUILD_STARTED}'`)
      .replaceAll('"soci-snapshotter started"', `"${NEXT_BUILD_STARTED}"`);
    if (marked !== text) await writeFile(join(dir, file), marked);
  }
  return { bin: join(dir, 'bin.js'), remove: () => rm(dir, { recursive: true, force: true }) };
}

/** The stack's own FUSE keeper socket (a short path: unix sockets allow 107 bytes). */
export function keeperSocket(dir: string): string {
  return join(dir, 'keeper.sock');
}

/** Starts the FUSE keeper (the built launcher) in its own process. */
export function startKeeper(dir: string): Promise<ChildDaemon> {
  const socket = keeperSocket(dir);
  return startSocketDaemon('node', [KEEPER_BIN, '--socket', socket, '--wait-for-daemon', '120s'], socket);
}

/** Sums the samples of counter `name` in a Prometheus text exposition whose labels include `labels`. */
export function sumSamples(exposition: string, name: string, labels: Record<string, string> = {}): number {
  let sum = 0;
  for (const line of exposition.split('\n')) {
    const sample = /^([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)$/.exec(line);
    if (!sample || sample[1] !== name) continue;
    const have = new Map([...(sample[2] ?? '').matchAll(/(\w+)="([^"]*)"/g)].map((m) => [m[1], m[2]]));
    if (Object.entries(labels).every(([k, v]) => have.get(k) === v)) sum += Number(sample[3]);
  }
  return sum;
}

export async function startStack(options: DaemonOptions = {}): Promise<Stack> {
  const dir = await mkdtemp(join(tmpdir(), 'soci-e2e-'));
  const registry = await startRegistry();
  const socket = join(dir, 'soci.sock');
  const metricsPort = await freePort();
  const configFile = join(dir, 'soci-snapshotter.toml');
  // containerd dials its proxy plugin on first use, so it can start first and the daemon can be
  // told where containerd is (it asks for containerd's version at first contact).
  const containerd = await startContainerd({ snapshotterSocket: socket });
  await writeFile(
    configFile,
    daemonConfig(dir, socket, metricsPort, registry.host, containerd.address, options),
  );
  const keeper = await startKeeper(dir);
  const daemonProcess = await SnapshotterProcess.start(dir, configFile, socket);
  // containerd 1.6 dials at start too: until its backoff runs out, calls fail fast.
  await waitForContainerd(containerd);
  const client = new ContainerdClient({ address: containerd.address, namespace: containerd.namespace });
  const registryClient = new RegistryClient({ hosts: { [registry.host]: { plainHttp: true } } });

  const stack: Stack = {
    dir,
    registry,
    containerd,
    keeper,
    get daemon() {
      return daemonProcess.daemon;
    },
    metricsUrl: `http://127.0.0.1:${metricsPort}/metrics`,
    soci: (args) => run('node', [SOCI_BIN, ...args, '--root', join(dir, 'soci-store'), '--plain-http']),
    pull: (ref, snapshotter = 'soci') =>
      pullImage({ client, ref, snapshotter, source: registryClient.repository(ref) }),
    async runContainer(ref, command, snapshotter = 'soci') {
      const id = `c${process.pid}-${++containerSeq}`;
      const out = await containerd.ctr(['run', '--rm', '--snapshotter', snapshotter, ref, id, ...command]);
      return out.stdout;
    },
    async metric(name, labels = {}) {
      return sumSamples(await (await fetch(stack.metricsUrl)).text(), name, labels);
    },
    spanCacheDir: join(dir, 'span-cache'),
    async restartDaemon(whileDown, how = 'SIGTERM', bin = SNAPSHOTTER_BIN) {
      await daemonProcess.restart(how, whileDown, bin);
      await waitForContainerd(containerd);
    },
    async stop() {
      await containerd.stop().catch(() => undefined);
      await daemonProcess.stop().catch(() => undefined);
      await registryClient.close().catch(() => undefined);
      await registry.stop().catch(() => undefined);
      await unmountAllBelow(dir).catch(() => undefined);
      await keeper.stop().catch(() => undefined);
      await rm(dir, { recursive: true, force: true });
    },
  };
  return stack;
}

/**
 * The daemon as a service manager runs it: in a cgroup of its own (what a systemd unit gets),
 * so that a test can end it the ways a node does: SIGTERM, a crash (SIGKILL), or every process
 * of the unit killed at once ('cgroup', which is what `systemctl restart` does).
 */
export class SnapshotterProcess {
  private constructor(
    private current: ChildDaemon,
    private readonly group: string,
    private readonly configFile: string,
    private readonly socket: string,
  ) {}

  static async start(dir: string, configFile: string, socket: string): Promise<SnapshotterProcess> {
    const root = existsSync('/sys/fs/cgroup/unified/cgroup.procs')
      ? '/sys/fs/cgroup/unified'
      : '/sys/fs/cgroup';
    const group = join(root, `soci-e2e-${basename(dir)}`);
    await mkdir(group, { recursive: true });
    const started = new SnapshotterProcess(undefined as unknown as ChildDaemon, group, configFile, socket);
    await started.launch();
    return started;
  }

  get daemon(): ChildDaemon {
    return this.current;
  }

  /** Ends the daemon as `how` says, runs `whileDown`, and starts it again (from `bin`, another build, if given). */
  async restart(how: DaemonStop, whileDown?: () => Promise<void>, bin = SNAPSHOTTER_BIN): Promise<void> {
    await this.end(how);
    await whileDown?.();
    await this.launch(bin);
  }

  async stop(): Promise<void> {
    await this.current.stop();
    await rmdir(this.group).catch(() => undefined);
  }

  private async launch(bin = SNAPSHOTTER_BIN): Promise<void> {
    this.current = await startSocketDaemon('node', [bin, '--config', this.configFile], this.socket);
    await writeFile(join(this.group, 'cgroup.procs'), String(this.current.child.pid));
  }

  private async end(how: DaemonStop): Promise<void> {
    const { child } = this.current;
    if (how === 'SIGTERM') return this.current.stop();
    const exited = new Promise<void>((done) => {
      if (child.exitCode !== null || child.signalCode !== null) done();
      else child.once('exit', () => done());
    });
    if (how === 'SIGKILL') child.kill('SIGKILL');
    else {
      await writeFile(join(this.group, 'cgroup.kill'), '1');
      await waitUntil(
        'the daemon cgroup to empty',
        async () => (await readFile(join(this.group, 'cgroup.procs'), 'utf8')).trim() === '',
        10_000,
      );
    }
    await exited;
  }
}
