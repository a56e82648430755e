// End to end with the real containerd (the release under test), runc and overlayfs: the daemon runs in this process,
// containerd uses it as the proxy snapshotter "soci", ctr imports an image made by umoci and runs it.
import { chmod, copyFile, mkdir, mkdtemp, readdir, rm, stat, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { startContainerd, type TestContainerd, unmountAllBelow } from '@soci-ts/testing/containerd';
import { run, waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig, type SnapshotterConfig } from '../src/config.js';
import { type RunningSnapshotter, startSnapshotter } from '../src/daemon.js';
import { silentLogger } from './helpers.js';

const IMAGE = 'docker.io/library/soci-e2e:v1';
const SN = ['--snapshotter', 'soci'];

/** A two-layer image: a static busybox, then a text file; default command prints a line. */
async function buildBusyboxImage(dir: string): Promise<string> {
  const layout = join(dir, 'layout');
  const image = `${layout}:v1`;
  await run('umoci', ['init', '--layout', layout]);
  await run('umoci', ['new', '--image', image]);
  const l1 = join(dir, 'l1');
  await mkdir(join(l1, 'bin'), { recursive: true });
  await copyFile('/bin/busybox', join(l1, 'bin', 'busybox'));
  await chmod(join(l1, 'bin', 'busybox'), 0o755);
  await symlink('busybox', join(l1, 'bin', 'sh'));
  await run('umoci', ['insert', '--image', image, l1, '/']);
  const l2 = join(dir, 'l2');
  await mkdir(l2);
  await run('sh', ['-c', `echo hello-soci > ${join(l2, 'hello.txt')}`]);
  await run('umoci', ['insert', '--image', image, l2, '/']);
  await run('umoci', [
    'config',
    '--image',
    image,
    '--config.cmd',
    '/bin/busybox',
    '--config.cmd',
    'echo',
    '--config.cmd',
    'default-cmd',
  ]);
  await run('umoci', ['gc', '--layout', layout]);
  const tar = join(dir, 'image.tar');
  await run('tar', ['-C', layout, '-cf', tar, '.']);
  return tar;
}

interface SnapshotRow {
  key: string;
  parent: string;
  kind: string;
}

describe('with containerd as proxy snapshotter "soci"', () => {
  let dir: string;
  let config: SnapshotterConfig;
  let daemon: RunningSnapshotter | undefined;
  let containerd: TestContainerd | undefined;

  const ctr = (args: string[]) => containerd!.ctr(args);
  const snapshots = async (): Promise<SnapshotRow[]> => {
    const { stdout } = await ctr(['snapshots', ...SN, 'ls']);
    return stdout
      .trim()
      .split('\n')
      .slice(1)
      .map((line) => line.trim().split(/\s+/))
      .map((cols) =>
        cols.length === 3
          ? { key: cols[0]!, parent: cols[1]!, kind: cols[2]! }
          : { key: cols[0]!, parent: '', kind: cols[1]! },
      );
  };
  const runIn = async (name: string, cmd: string[]) =>
    (await ctr(['run', ...SN, '--rm', IMAGE, name, ...cmd])).stdout;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-e2e-'));
    config = { ...defaultConfig(join(dir, 'sn-root')), socket: join(dir, 'sn.sock'), metricsAddress: '' };
    daemon = await startSnapshotter(config, { logger: silentLogger });
    containerd = await startContainerd({ snapshotterSocket: config.socket });
    const tar = await buildBusyboxImage(dir);
    await ctr(['image', 'import', ...SN, '--base-name', 'docker.io/library/soci-e2e', tar]);
  }, 180_000);

  afterAll(async () => {
    await containerd?.stop();
    await daemon?.close();
    await unmountAllBelow(dir);
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('unpacks the imported image into committed snapshots with a parent chain', async () => {
    const rows = await snapshots();
    expect(rows).toHaveLength(2);
    expect(rows.every((r) => r.kind === 'Committed')).toBe(true);
    const base = rows.find((r) => r.parent === '')!;
    const top = rows.find((r) => r.parent !== '')!;
    expect(top.parent).toBe(base.key);
    // Our own view: the same two layers, stored as committed snapshots under our root.
    expect(daemon!.snapshotter.list(['kind==committed'])).toHaveLength(2);
  });

  it('runs containers on the layers (overlay over both layers)', async () => {
    expect(await runIn('c1', ['/bin/busybox', 'cat', '/hello.txt'])).toBe('hello-soci\n');
    expect(await runIn('c2', [])).toBe('default-cmd\n');
  }, 120_000);

  it('gives each container its own upper layer on the shared committed layers', async () => {
    expect(await runIn('w1', ['/bin/sh', '-c', 'echo changed > /hello.txt && cat /hello.txt'])).toBe(
      'changed\n',
    );
    expect(await runIn('w2', ['/bin/busybox', 'cat', '/hello.txt'])).toBe('hello-soci\n');
    await ctr(['containers', 'create', ...SN, IMAGE, 'keep1']);
    await ctr(['containers', 'create', ...SN, IMAGE, 'keep2']);
    const rows = await snapshots();
    const active = rows.filter((r) => r.kind === 'Active');
    expect(active.map((r) => r.key).sort()).toEqual(['keep1', 'keep2']);
    const top = rows.find((r) => r.kind === 'Committed' && r.parent !== '')!;
    expect(active.every((r) => r.parent === top.key)).toBe(true);
    expect(rows.filter((r) => r.kind === 'Committed')).toHaveLength(2);
  }, 120_000);

  it('reports usage: the busybox layer is at least as big as busybox', async () => {
    const { stdout } = await ctr(['snapshots', ...SN, 'usage']);
    const base = (await snapshots()).find((r) => r.parent === '')!;
    const line = stdout.split('\n').find((l) => l.startsWith(base.key));
    // ctr prints human sizes; busybox is about 2 MiB, so the base layer shows MiB.
    expect(line).toMatch(/\s\d+(\.\d+)? MiB\s+\d+\s*$/);
    // Backend names differ from containerd's keys; find our base layer by kind and parent.
    const ours = daemon!.snapshotter.list(['kind==committed,parent==""']);
    expect(ours).toHaveLength(1);
    const usage = await daemon!.snapshotter.usage(ours[0]!.name);
    expect(usage.size).toBeGreaterThanOrEqual((await stat('/bin/busybox')).size);
    expect(usage.inodes).toBe(4); // /, /bin, /bin/busybox, /bin/sh
  });

  it('keeps the snapshots across a daemon restart', async () => {
    await daemon!.close();
    daemon = undefined;
    daemon = await startSnapshotter(config, { logger: silentLogger });
    // containerd redials a proxy plugin with exponential backoff: wait for its next attempt.
    let rows: Awaited<ReturnType<typeof snapshots>> = [];
    await waitUntil(
      'containerd to reconnect to the restarted snapshotter',
      async () => {
        rows = await snapshots();
        return true;
      },
      150_000,
    );
    expect(rows.filter((r) => r.kind === 'Committed')).toHaveLength(2);
    expect(await runIn('after-restart', ['/bin/busybox', 'cat', '/hello.txt'])).toBe('hello-soci\n');
  }, 240_000);

  it('removes snapshots (directly and through containerd garbage collection)', async () => {
    const top = (await snapshots()).find((r) => r.kind === 'Committed' && r.parent !== '')!;
    await ctr(['snapshots', ...SN, 'prepare', 'scratch', top.key]);
    expect((await snapshots()).some((r) => r.key === 'scratch')).toBe(true);
    await ctr(['snapshots', ...SN, 'rm', 'scratch']);
    expect((await snapshots()).some((r) => r.key === 'scratch')).toBe(false);

    await ctr(['containers', 'rm', 'keep1', 'keep2']);
    await ctr(['image', 'rm', '--sync', IMAGE]);
    expect(await snapshots()).toEqual([]);
    expect(daemon!.snapshotter.list()).toEqual([]);
    expect(await readdir(join(config.root, 'snapshots'))).toEqual([]);
  }, 120_000);
});
