import { type ChildProcess, spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run, stopChild, waitUntil } from '@soci-ts/testing/process';

/**
 * A private containerd for one test file (until the shared @soci-ts/testing/containerd lands): its own
 * root, state and socket in a temp directory, config version 2, the CRI plugin disabled.
 */
export interface TestContainerd {
  /** The gRPC socket path. */
  address: string;
  dir: string;
  /** Runs `ctr -a <socket> -n <namespace> ...args` and returns stdout. */
  ctr(namespace: string, args: string[]): Promise<string>;
  stop(): Promise<void>;
}

const CONTAINERD = '/usr/bin/containerd';

export interface StartContainerdOptions {
  /** Proxy snapshotters to register: name -> gRPC socket path. */
  proxySnapshotters?: Record<string, string>;
}

export async function startContainerd(options: StartContainerdOptions = {}): Promise<TestContainerd> {
  if (!existsSync(CONTAINERD)) throw new Error(`${CONTAINERD} is missing: run scripts/setup`);
  const dir = await mkdtemp(join(tmpdir(), 'soci-ctd-'));
  const address = join(dir, 'containerd.sock');
  const config = [
    'version = 2',
    `root = "${join(dir, 'root')}"`,
    `state = "${join(dir, 'state')}"`,
    'disabled_plugins = ["io.containerd.grpc.v1.cri"]',
    '[grpc]',
    `  address = "${address}"`,
    '[ttrpc]',
    `  address = "${address}.ttrpc"`,
    '[debug]',
    '  level = "warn"',
    ...Object.entries(options.proxySnapshotters ?? {}).flatMap(([name, socket]) => [
      `[proxy_plugins.${name}]`,
      '  type = "snapshot"',
      `  address = "${socket}"`,
    ]),
    '',
  ].join('\n');
  await writeFile(join(dir, 'config.toml'), config);
  const child = spawn(CONTAINERD, ['--config', join(dir, 'config.toml')], {
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  const stderr = captureTail(child);
  try {
    await waitUntil(
      'containerd',
      async () => {
        await run('ctr', ['-a', address, 'version']);
        return true;
      },
      30_000,
      child,
    );
  } catch (e) {
    await stopChild(child);
    await rm(dir, { recursive: true, force: true });
    throw new Error(`${(e as Error).message}; stderr: ${stderr()}`);
  }
  return {
    address,
    dir,
    ctr: async (namespace, args) => (await run('ctr', ['-a', address, '-n', namespace, ...args])).stdout,
    async stop() {
      await stopChild(child, 10_000);
      // Snapshot mounts are gone once containers are; a leftover mount would make rm fail loudly.
      await rm(dir, { recursive: true, force: true });
    },
  };
}

function captureTail(child: ChildProcess): () => string {
  let tail = '';
  child.stderr?.on('data', (b: Buffer) => {
    tail = (tail + b.toString()).slice(-4000);
  });
  return () => tail.trim();
}
