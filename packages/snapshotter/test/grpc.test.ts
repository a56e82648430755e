import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { type RunningSnapshotter, startSnapshotter } from '../src/daemon.js';
import { loadSnapshotsProto } from '../src/proto.js';
import type { RemoteLayerSource } from '../src/remote.js';
import { silentLogger } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: dynamic gRPC client
type Client = any;

function call(client: Client, method: string, req: object): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    client[method](req, (err: grpc.ServiceError | null, res: Record<string, unknown>) =>
      err ? reject(err) : resolve(res),
    );
  });
}

function list(client: Client, filters: string[]): Promise<{ name: string; kind: string }[]> {
  return new Promise((resolve, reject) => {
    const out: { name: string; kind: string }[] = [];
    const stream = client.List({ snapshotter: 'soci', filters });
    stream.on('data', (msg: { info: { name: string; kind: string }[] }) => out.push(...msg.info));
    stream.on('error', reject);
    stream.on('end', () => resolve(out));
  });
}

async function codeOf(p: Promise<unknown>): Promise<number | undefined> {
  try {
    await p;
    return grpc.status.OK;
  } catch (err) {
    return (err as grpc.ServiceError).code;
  }
}

describe('Snapshots gRPC service on a unix socket', () => {
  let dir: string;
  let daemon: RunningSnapshotter;
  let client: Client;
  const remote: RemoteLayerSource = {
    prepareRemote: async (req) =>
      req.labels['test/remote'] === 'yes' ? 'mounted' : { fallback: 'not remote' },
    restore: async () => {},
    unmount: async () => {},
  };

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-sn-grpc-'));
    const config = {
      ...defaultConfig(join(dir, 'root')),
      socket: join(dir, 'run', 'sn.sock'),
      metricsAddress: '127.0.0.1:0',
    };
    daemon = await startSnapshotter(config, { logger: silentLogger, remote });
    const { client: Ctor } = loadSnapshotsProto();
    client = new Ctor(`unix://${config.socket}`, grpc.credentials.createInsecure());
  });

  afterAll(async () => {
    client?.close();
    await daemon?.close();
    await rm(dir, { recursive: true, force: true });
  });

  it('serves the whole snapshot lifecycle with containerd status codes', async () => {
    const prep = await call(client, 'Prepare', { key: 'ns/1/a', parent: '', labels: { l: 'v' } });
    expect(prep.mounts).toEqual([
      { type: 'bind', source: `${dir}/root/snapshots/1/fs`, target: '', options: ['rw', 'rbind'] },
    ]);
    await writeFile(join(`${dir}/root/snapshots/1/fs`, 'f'), 'hello');
    expect(await codeOf(call(client, 'Prepare', { key: 'ns/1/a', parent: '' }))).toBe(
      grpc.status.ALREADY_EXISTS,
    );
    expect(await codeOf(call(client, 'Prepare', { key: 'x', parent: 'nope' }))).toBe(grpc.status.NOT_FOUND);
    expect(await codeOf(call(client, 'Stat', { key: 'nope' }))).toBe(grpc.status.NOT_FOUND);
    await call(client, 'Commit', { name: 'l1', key: 'ns/1/a', labels: { c: '1' } });
    const st = (await call(client, 'Stat', { key: 'l1' })).info as Record<string, unknown>;
    expect(st).toMatchObject({ name: 'l1', parent: '', kind: 'COMMITTED', labels: { c: '1' } });
    expect(Number((st.created_at as { seconds: string }).seconds)).toBeGreaterThan(1_600_000_000);
    expect(await codeOf(call(client, 'Mounts', { key: 'l1' }))).toBe(grpc.status.FAILED_PRECONDITION);
    const usage = await call(client, 'Usage', { key: 'l1' });
    expect(Number(usage.size)).toBeGreaterThan(0);
    expect(Number(usage.inodes)).toBe(2);

    const up = await call(client, 'Update', {
      info: { name: 'l1', labels: { c: '2', d: '3' } },
      update_mask: { paths: ['labels.d'] },
    });
    expect((up.info as { labels: object }).labels).toEqual({ c: '1', d: '3' });

    await call(client, 'View', { key: 'ns/2/v', parent: 'l1' });
    const mounts = (await call(client, 'Mounts', { key: 'ns/2/v' })).mounts;
    expect(mounts).toEqual([
      { type: 'bind', source: `${dir}/root/snapshots/1/fs`, target: '', options: ['ro', 'rbind'] },
    ]);
    expect(await codeOf(call(client, 'Remove', { key: 'l1' }))).toBe(grpc.status.FAILED_PRECONDITION);

    expect(await list(client, [])).toHaveLength(2);
    expect(await list(client, ['kind==view'])).toEqual([
      expect.objectContaining({ name: 'ns/2/v', kind: 'VIEW' }),
    ]);
    expect(await codeOf(list(client, ['kind==']))).toBe(grpc.status.INVALID_ARGUMENT);

    await call(client, 'Remove', { key: 'ns/2/v' });
    await call(client, 'Remove', { key: 'l1' });
    await call(client, 'Cleanup', {});
    expect(await list(client, [])).toEqual([]);
  });

  it('answers ALREADY_EXISTS (6) for a remotely mounted layer, as containerd expects', async () => {
    const labels = { 'containerd.io/snapshot.ref': 'sha256:chain', 'test/remote': 'yes' };
    const err = (await call(client, 'Prepare', { key: 'ns/9/extract', parent: '', labels }).catch(
      (e) => e,
    )) as grpc.ServiceError;
    expect(err.code).toBe(6);
    expect(err.details).toBe('target snapshot "sha256:chain": already exists');
    const found = await list(client, ['labels."containerd.io/snapshot.ref"==sha256:chain,parent==""']);
    expect(found.map((i) => i.name)).toEqual(['sha256:chain']);
  });

  it('lists many snapshots across several stream messages', async () => {
    for (let i = 0; i < 230; i++) await call(client, 'Prepare', { key: `many/${i}`, parent: '' });
    expect((await list(client, ['name~=^many/'])).length).toBe(230);
  });

  it('serves Prometheus metrics', async () => {
    const res = await fetch(`http://${daemon.metricsAddress}/metrics`);
    const text = await res.text();
    expect(text).toMatch(
      /soci_snapshotter_grpc_requests_total\{method="Prepare",code="ALREADY_EXISTS"\} [1-9]/,
    );
    expect(text).toMatch(/soci_snapshotter_snapshots\{kind="active"\} 230/);
    expect(text).toMatch(/soci_snapshotter_remote_prepare_total\{outcome="mounted"\} 1/);
    expect((await fetch(`http://${daemon.metricsAddress}/other`)).status).toBe(404);
  });

  it('removes its socket on close', async () => {
    const socket = daemon.socket;
    expect((await stat(socket)).isSocket()).toBe(true);
    await daemon.close();
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  });
});
