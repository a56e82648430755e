// The Kubernetes path on loopback: a registry, our snapshotter daemon (the built bin), containerd
// (the release under test) with its CRI plugin pulling into the daemon as the `soci` proxy snapshotter, and crictl
// talking CRI to containerd the way the kubelet does.
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ContainerdClient, type SnapshotInfo } from '@soci-ts/containerd-client';
import {
  type ChildDaemon,
  startContainerd,
  type TestContainerd,
  unmountAllBelow,
} from '@soci-ts/testing/containerd';
import { pushLayout } from '@soci-ts/testing/images';
import { freePort, type RunResult, run } from '@soci-ts/testing/process';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import { buildPauseImage } from './cri-images.js';
import {
  type DaemonStop,
  daemonConfig,
  SnapshotterProcess,
  SOCI_BIN,
  startKeeper,
  sumSamples,
  waitForContainerd,
} from './stack.js';

const CRICTL = join(process.env.SOCI_TS_GO_BIN ?? '/opt/soci-ts/bin', 'crictl');
/** The containerd namespace the CRI plugin keeps its images, containers and snapshots in. */
export const CRI_NAMESPACE = 'k8s.io';

export interface CriStack {
  dir: string;
  registry: TestRegistry;
  containerd: TestContainerd;
  daemon: ChildDaemon;
  /** Reference of the pause image, pushed to the registry and set as CRI's `sandbox_image`. */
  sandboxImage: string;
  /** Runs `crictl` against containerd's CRI endpoint; rejects with crictl's stderr. */
  crictl(args: readonly string[]): Promise<RunResult>;
  /** Runs the built `soci` CLI (plain HTTP) with a store of this stack. */
  soci(args: readonly string[]): Promise<RunResult>;
  /** One counter of the daemon's /metrics, summed over its series whose labels include `labels`. */
  metric(name: string, labels?: Record<string, string>): Promise<number>;
  /** Every snapshot the daemon holds, with the labels it stored (what containerd sent it). */
  daemonSnapshots(): Promise<SnapshotInfo[]>;
  /**
   * Ends the daemon as `how` says (see SnapshotterProcess), runs `whileDown`, starts it again
   * and waits until containerd reaches it.
   */
  restartDaemon(how: DaemonStop, whileDown?: () => Promise<void>, bin?: string): Promise<void>;
  /** Removes every pod (and so its containers), then stops everything and deletes the temp dirs. */
  stop(): Promise<void>;
}

export async function startCriStack(): Promise<CriStack> {
  if (!existsSync(CRICTL)) throw new Error(`${CRICTL} is missing: run scripts/install-go-tools`);
  const dir = await mkdtemp(join(tmpdir(), 'soci-cri-'));
  // Undone in reverse: whatever is still mounted below dir goes just before dir itself.
  const cleanups: (() => Promise<unknown>)[] = [
    () => rm(dir, { recursive: true, force: true }),
    () => unmountAllBelow(dir),
  ];
  const unwind = async () => {
    for (const step of cleanups.splice(0).reverse()) await step().catch(() => undefined);
  };
  try {
    const registry = await startRegistry();
    cleanups.push(() => registry.stop());

    const pause = await buildPauseImage();
    cleanups.push(() => pause.cleanup());
    const sandboxImage = await pushLayout(pause, { host: registry.host, repository: 'cri/pause', tag: '1' });

    const socket = join(dir, 'soci.sock');
    // The daemon starts after containerd (it is told containerd's address) but stops after it too:
    // containerd first ends the containers that read from the daemon's mounts.
    // The FUSE keeper, in its own process (its own unit on a node), outlives daemon restarts.
    const keeper = await startKeeper(dir);
    cleanups.push(() => keeper.stop());
    let daemon: SnapshotterProcess | undefined;
    cleanups.push(async () => daemon?.stop());
    const containerd = await startContainerd({
      snapshotterSocket: socket,
      cri: true,
      namespace: CRI_NAMESPACE,
      plainHttpRegistries: [registry.host],
      sandboxImage,
      logLevel: 'debug',
    });
    cleanups.push(() => containerd.stop());
    const metricsPort = await freePort();
    const configFile = join(dir, 'soci-snapshotter.toml');
    await writeFile(
      configFile,
      daemonConfig(dir, socket, metricsPort, registry.host, containerd.address, { backgroundFetch: false }),
    );
    daemon = await SnapshotterProcess.start(dir, configFile, socket);
    const daemonProcess = daemon;

    const endpoint = `unix://${containerd.address}`;
    const crictlConfig = join(dir, 'crictl.yaml');
    await writeFile(
      crictlConfig,
      `runtime-endpoint: ${endpoint}\nimage-endpoint: ${endpoint}\ntimeout: 60\n`,
    );
    const crictl = (args: readonly string[]) => run(CRICTL, ['--config', crictlConfig, ...args]);
    // Pods go first: removing a pod stops and removes its containers through CRI.
    cleanups.push(() => removeAllPods(crictl));

    const daemonClient = new ContainerdClient({ address: socket, namespace: CRI_NAMESPACE });
    cleanups.push(async () => daemonClient.close());
    await mkdir(join(dir, 'soci-store'), { recursive: true });

    return {
      dir,
      registry,
      containerd,
      get daemon() {
        return daemonProcess.daemon;
      },
      sandboxImage,
      crictl,
      soci: (args) => run('node', [SOCI_BIN, ...args, '--root', join(dir, 'soci-store'), '--plain-http']),
      metric: async (name, labels) =>
        sumSamples(await (await fetch(`http://127.0.0.1:${metricsPort}/metrics`)).text(), name, labels),
      // The daemon serves containerd's Snapshots API itself; it ignores the snapshotter field.
      daemonSnapshots: () => daemonClient.snapshots('soci').list(),
      async restartDaemon(how, whileDown, bin) {
        await daemonProcess.restart(how, whileDown, bin);
        await waitForContainerd(containerd);
      },
      stop: unwind,
    };
  } catch (err) {
    await unwind();
    throw err;
  }
}

async function removeAllPods(crictl: (args: readonly string[]) => Promise<RunResult>): Promise<void> {
  const { stdout } = await crictl(['pods', '-q']);
  for (const id of stdout.split('\n').filter(Boolean)) {
    await crictl(['stopp', id]).catch(() => undefined);
    await crictl(['rmp', '--force', id]).catch(() => undefined);
  }
}
