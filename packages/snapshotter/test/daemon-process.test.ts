// The soci-snapshotter command as a real process: kill -9 in use, start again on the same root
// (stale socket file left behind), then a clean SIGTERM shutdown.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadSnapshotsProto } from '../src/proto.js';
import { spawnTs } from './helpers.js';

// biome-ignore lint/suspicious/noExplicitAny: dynamic gRPC client
type Client = any;

describe('soci-snapshotter process', () => {
  let dir: string;
  let socket: string;
  let configFile: string;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-sn-proc-'));
    socket = join(dir, 'sn.sock');
    configFile = join(dir, 'config.toml');
    await writeFile(
      configFile,
      `root = "${dir}/root"\nsocket = "${socket}"\nmetrics_address = ""\nlog_level = "debug"\n`,
    );
  });
  afterAll(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  const start = async () => {
    const proc = spawnTs('src/bin.ts', ['--config', configFile]);
    await waitUntil(
      'soci-snapshotter',
      async () => /soci-snapshotter started/.test(proc.stderr()),
      60_000,
      proc.child,
    );
    const { client: Ctor } = loadSnapshotsProto();
    const client: Client = new Ctor(`unix://${socket}`, grpc.credentials.createInsecure());
    const call = (method: string, req: object): Promise<Record<string, unknown>> =>
      new Promise((resolve, reject) => {
        client[method](req, (err: Error | null, res: Record<string, unknown>) =>
          err ? reject(err) : resolve(res),
        );
      });
    return { proc, client, call };
  };

  it('keeps committed snapshots after kill -9 and shuts down cleanly on SIGTERM', async () => {
    const first = await start();
    await first.call('Prepare', { key: 'a', parent: '' });
    await first.call('Commit', { name: 'layer', key: 'a' });
    await first.call('Prepare', { key: 'b', parent: 'layer' });
    first.client.close();
    first.proc.child.kill('SIGKILL');
    await first.proc.done;
    expect((await stat(socket)).isSocket()).toBe(true); // left behind by the killed process

    const second = await start();
    const st = (await second.call('Stat', { key: 'layer' })).info as { kind: string };
    expect(st.kind).toBe('COMMITTED');
    const m = (await second.call('Mounts', { key: 'b' })).mounts as { type: string }[];
    expect(m[0]!.type).toBe('overlay');
    second.client.close();
    second.proc.child.kill('SIGTERM');
    const end = await second.proc.done;
    expect(end.code).toBe(0);
    // Logs are JSON lines on stderr.
    const lines = end.stderr
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { msg: string });
    expect(lines.map((l) => l.msg)).toContain('soci-snapshotter stopped');
    await expect(stat(socket)).rejects.toMatchObject({ code: 'ENOENT' });
  }, 120_000);
});
