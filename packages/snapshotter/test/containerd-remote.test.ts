// The remote-snapshot contract with the real containerd (the release under test): a Prepare that carries a target is
// answered ALREADY_EXISTS after the remote source mounted the layer, and containerd's metadata
// layer then finds and registers the committed target (it looks it up with a List filter).
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { ContainerdClient, LEASE_HEADER } from '@soci-ts/containerd-client';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { run } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { type RunningSnapshotter, startSnapshotter } from '../src/daemon.js';
import { loadSnapshotsProto } from '../src/proto.js';
import type { RemoteLayerSource, RemotePrepareRequest } from '../src/remote.js';
import { silentLogger } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: dynamic gRPC client
type Client = any;

/** Stands in for lazy-fs: "mounts" by filling the mountpoint, only for layers labelled with an index digest. */
class FillingRemote implements RemoteLayerSource {
  prepared: RemotePrepareRequest[] = [];
  async prepareRemote(req: RemotePrepareRequest) {
    this.prepared.push(req);
    if (!req.labels['containerd.io/snapshot/remote/soci.index.digest']) return { fallback: 'no SOCI index' };
    await writeFile(join(req.mountpoint, 'from-remote.txt'), `layer ${req.target}\n`);
    return 'mounted' as const;
  }
  async restore() {}
  async unmount() {}
}

describe('remote snapshots through containerd (CRI plugin enabled)', () => {
  let dir: string;
  let daemon: RunningSnapshotter | undefined;
  let containerd: TestContainerd | undefined;
  let client: Client;
  const remote = new FillingRemote();
  const meta = new grpc.Metadata();
  meta.set('containerd-namespace', 'test');
  let leases: ContainerdClient | undefined;

  const call = (method: string, req: object): Promise<Record<string, unknown>> =>
    new Promise((resolve, reject) => {
      client[method](
        { snapshotter: 'soci', ...req },
        meta,
        (err: grpc.ServiceError | null, res: Record<string, unknown>) => (err ? reject(err) : resolve(res)),
      );
    });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-remote-e2e-'));
    const config = {
      ...defaultConfig(join(dir, 'sn-root')),
      socket: join(dir, 'sn.sock'),
      metricsAddress: '',
    };
    daemon = await startSnapshotter(config, { logger: silentLogger, remote });
    containerd = await startContainerd({ snapshotterSocket: config.socket, cri: true });
    const { client: Ctor } = loadSnapshotsProto();
    // containerd serves the same Snapshots API, with a snapshotter field to pick the backend.
    client = new Ctor(`unix://${containerd.address}`, grpc.credentials.createInsecure());
    // Every call runs under a lease, as a pull does: a committed snapshot that nothing references
    // is garbage, and containerd's GC (scheduled after deletions, e.g. CRI's own start-up cleanup)
    // could take it between the Prepare that registers it and the calls that use it.
    leases = new ContainerdClient({ address: containerd.address, namespace: 'test' });
    const lease = await leases.leases.create({ expiresInMs: 10 * 60_000 });
    meta.set(LEASE_HEADER, lease.id);
  }, 120_000);

  afterAll(async () => {
    client?.close();
    leases?.close();
    await containerd?.stop();
    await daemon?.close();
    await rm(dir, { recursive: true, force: true });
  }, 120_000);

  it('runs with the CRI plugin configured for the soci snapshotter', async () => {
    const { stdout } = await containerd!.ctr(['plugins', 'ls']);
    expect(stdout).toMatch(/io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
    const config = await readFile(join(containerd!.dir, 'config.toml'), 'utf8');
    expect(config).toContain('snapshotter = "soci"');
    // 1.x: image labels on CRI's pulls; 2.x: on the transfer service's, which CRI uses.
    expect(config).toContain(
      containerd!.release.major >= 2
        ? 'enable_remote_snapshot_annotations = "true"'
        : 'disable_snapshot_annotations = false',
    );
  });

  it('registers a remotely mounted layer under its chain ID', async () => {
    const target = 'sha256:1111111111111111111111111111111111111111111111111111111111111111';
    const labels = {
      'containerd.io/snapshot.ref': target,
      'containerd.io/snapshot/cri.layer-digest': 'sha256:layer',
      'containerd.io/snapshot/remote/soci.index.digest': 'sha256:index',
      'not-inherited': 'dropped by containerd',
    };
    const err = (await call('Prepare', { key: `extract-1 ${target}`, parent: '', labels }).catch(
      (e) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(grpc.status.ALREADY_EXISTS);
    expect(remote.prepared).toHaveLength(1);
    // containerd namespaces the key and passes only snapshot labels on.
    expect(remote.prepared[0]!.key).toMatch(/^test\/\d+\/extract-1 sha256:1{64}$/);
    expect(remote.prepared[0]!.labels['not-inherited']).toBeUndefined();

    const info = (await call('Stat', { key: target })).info as {
      kind: string;
      labels: Record<string, string>;
    };
    expect(info.kind).toBe('COMMITTED');
    expect(info.labels['containerd.io/snapshot/remote']).toBe('remote snapshot');

    // A container layer on top of it mounts the remote layer as overlay lowerdir.
    const { mounts } = (await call('Prepare', { key: 'rw-on-remote', parent: target, labels: {} })) as {
      mounts: { type: string; options: string[] }[];
    };
    expect(mounts[0]!.type).toBe('overlay');
    const target_ = join(dir, 'rootfs');
    await mkdir(target_);
    await run('mount', ['-t', 'overlay', 'overlay', '-o', mounts[0]!.options.join(','), target_]);
    try {
      expect(await readFile(join(target_, 'from-remote.txt'), 'utf8')).toBe(`layer ${target}\n`);
    } finally {
      await run('umount', [target_]);
    }
  });

  it('falls back to a normal active snapshot when the source declines', async () => {
    const target = 'sha256:2222222222222222222222222222222222222222222222222222222222222222';
    const res = (await call('Prepare', {
      key: `extract-2 ${target}`,
      parent: '',
      labels: { 'containerd.io/snapshot.ref': target },
    })) as { mounts: { type: string; options: string[] }[] };
    expect(res.mounts).toEqual([expect.objectContaining({ type: 'bind', options: ['rw', 'rbind'] })]);
    await call('Commit', {
      name: target,
      key: `extract-2 ${target}`,
      labels: { 'containerd.io/snapshot.ref': target },
    });
    const info = (await call('Stat', { key: target })).info as {
      kind: string;
      labels: Record<string, string>;
    };
    expect(info.kind).toBe('COMMITTED');
    expect(info.labels['containerd.io/snapshot/remote']).toBeUndefined();
  });
});
