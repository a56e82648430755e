// Running containers outlive the daemon: a container started lazily keeps reading files it never
// read before, with the right bytes, while soci-snapshotter is stopped, killed, killed with its
// whole cgroup (what `systemctl restart` does) or replaced by another build, and started again.
// The FUSE sessions live in the keeper process; each new daemon takes them over.
import { createHash } from 'node:crypto';
import { writeFile } from 'node:fs/promises';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import type { BuiltImage } from '@soci-ts/testing/images';
import { pushLayout } from '@soci-ts/testing/images';
import { waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  type DaemonStop,
  NEXT_BUILD_STARTED,
  nextDaemonBuild,
  SNAPSHOTTER_BIN,
  type Stack,
  startStack,
} from './support/stack.js';

const SPAN = 64 * 1024;
const md5 = (b: Uint8Array) => createHash('md5').update(b).digest('hex');
/** Files of the data layer, each several spans; every test reads ones nobody read before. */
const files = Array.from({ length: 40 }, (_, i) => noiseBytes(200 * 1024 + i * 1000, 100 + i));
const path = (i: number) => `/data/f${i}.bin`;

let stack: Stack;
let image: BuiltImage;
let ref: string;
const container = `outlive-${process.pid}`;
let execSeq = 0;
let nextFile = 0;

/** md5sum of a file, run inside the long-running container with `ctr task exec`. */
async function md5InContainer(file: string): Promise<string> {
  const { stdout } = await stack.containerd.ctr([
    'task',
    'exec',
    '--exec-id',
    `e${++execSeq}`,
    container,
    '/bin/busybox',
    'md5sum',
    file,
  ]);
  return stdout.split(' ')[0]!;
}

/** A file of the data layer that no one has read yet. */
function unreadFile(): number {
  return nextFile++;
}

beforeAll(async () => {
  // Background fetch off: a file no one read is not on this host until someone reads it.
  stack = await startStack({ backgroundFetch: false });
  image = await buildBusyboxImage([
    { '/bin/busybox': { busybox: true } },
    Object.fromEntries(files.map((bytes, i) => [path(i), bytes])),
  ]);
  ref = await pushLayout(image, { host: stack.registry.host, repository: 'outlive/app', tag: 'v1' });
  await stack.soci(['create', ref, '--span-size', String(SPAN), '--min-layer-size', '0', '--quiet']);
  await stack.soci(['push', ref, '--quiet']);
  const report = await stack.pull(ref);
  expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote']);
  await stack.containerd.ctr([
    'run',
    '-d',
    '--snapshotter',
    'soci',
    ref,
    container,
    '/bin/busybox',
    'sleep',
    '100000',
  ]);
}, 300_000);

afterAll(async () => {
  await stack?.containerd.ctr(['task', 'kill', '--signal', 'SIGKILL', container]).catch(() => undefined);
  await waitUntil(
    'the container to stop',
    async () => !(await stack.containerd.ctr(['task', 'ls'])).stdout.includes(container),
    20_000,
  ).catch(() => undefined);
  await stack?.containerd.ctr(['task', 'delete', container]).catch(() => undefined);
  await stack?.containerd.ctr(['container', 'delete', container]).catch(() => undefined);
  await stack?.stop();
  await image?.cleanup();
});

/** The restore counters of the daemon now running, once its background restores are done. */
async function restores(): Promise<{ takenOver: number; remounted: number }> {
  let takenOver = 0;
  await waitUntil(
    'both lazy layers restored',
    async () => {
      takenOver = await stack.metric('soci_fuse_session_restores_total', { result: 'taken_over' });
      return (
        takenOver + (await stack.metric('soci_fuse_session_restores_total', { result: 'remounted' })) >= 2
      );
    },
    60_000,
  );
  return {
    takenOver,
    remounted: await stack.metric('soci_fuse_session_restores_total', { result: 'remounted' }),
  };
}

/**
 * Restarts the daemon the way `how` says; while it is down, the container starts reading a file
 * no one read (it must wait, not fail). Afterwards that read completes with the right bytes, and
 * another unread file reads right too.
 */
async function restartWhileReading(
  how: DaemonStop,
  options: { bin?: string; whileDown?: () => Promise<void> } = {},
) {
  const before = unreadFile();
  expect(await md5InContainer(path(before))).toBe(md5(files[before]!));
  const during = unreadFile();
  let read: Promise<string> | undefined;
  let settled = false;
  await stack.restartDaemon(
    async () => {
      read = md5InContainer(path(during));
      void read.then(
        () => {
          settled = true;
        },
        () => {
          settled = true;
        },
      );
      await new Promise((r) => setTimeout(r, 1500));
      // No daemon: the read waits in the keeper instead of failing.
      expect(settled).toBe(false);
      await options.whileDown?.();
    },
    how,
    options.bin,
  );
  expect(await read).toBe(md5(files[during]!));
  const after = unreadFile();
  expect(await md5InContainer(path(after))).toBe(md5(files[after]!));
  expect(await restores()).toEqual({ takenOver: 2, remounted: 0 });
}

describe(`running containers outlive the daemon (containerd ${containerdUnderTest().version})`, () => {
  it('(a) stopped with SIGTERM and started again', async () => {
    await restartWhileReading('SIGTERM');
  }, 180_000);

  it('(b) killed with SIGKILL and started again', async () => {
    await restartWhileReading('SIGKILL');
  }, 180_000);

  it("every process of the daemon's cgroup killed (systemctl restart) and started again", async () => {
    await restartWhileReading('cgroup');
  }, 180_000);

  it('(c) replaced by another build of the daemon', async () => {
    const next = await nextDaemonBuild();
    try {
      await restartWhileReading('SIGTERM', { bin: next.bin });
      expect(stack.daemon.output()).toContain(NEXT_BUILD_STARTED);
    } finally {
      await stack.restartDaemon(undefined, 'SIGTERM', SNAPSHOTTER_BIN);
      await next.remove();
    }
  }, 240_000);

  it('killed with the registry down: the restart needs no registry, and reads go on once it is back', async () => {
    const cached = 0; // read by the first test
    await stack.restartDaemon(async () => stack.registry.freeze(), 'SIGKILL');
    try {
      expect(await restores()).toEqual({ takenOver: 2, remounted: 0 });
      // Fetched before: served from the span cache while the registry stays away.
      await writeFile('/proc/sys/vm/drop_caches', '3');
      expect(await md5InContainer(path(cached))).toBe(md5(files[cached]!));
    } finally {
      stack.registry.thaw();
    }
    const after = unreadFile();
    expect(await md5InContainer(path(after))).toBe(md5(files[after]!));
  }, 180_000);
});
