// The soci-snapshotter command as a real process: kill -9 in use, start again on the same root
// (stale socket file left behind), then a clean SIGTERM shutdown.
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:net';
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
  /** Stands where containerd should be: accepts connections and never answers. */
  let silentContainerd: Server;

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'soci-sn-proc-'));
    socket = join(dir, 'sn.sock');
    configFile = join(dir, 'config.toml');
    const containerdSocket = join(dir, 'silent-containerd.sock');
    // It reads (and drops) what arrives, so that it sees a client hang up and close() can finish.
    silentContainerd = createServer((conn) => conn.resume());
    await new Promise<void>((resolve) => silentContainerd.listen(containerdSocket, resolve));
    await writeFile(
      configFile,
      `root = "${dir}/root"\nsocket = "${socket}"\nmetrics_address = ""\nlog_level = "debug"\n` +
        `containerd_address = "${containerdSocket}"\n`,
    );
  });
  afterAll(async () => {
    await new Promise((resolve) => silentContainerd.close(resolve));
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
    // The containerd at containerd_address never answers its Version call: one warning with a
    // typed code, and every call above was answered meanwhile.
    await waitUntil(
      'the daemon to give up on the silent containerd',
      async () => /SNAPSHOTTER_CONTAINERD_UNREACHABLE/.test(first.proc.stderr()),
      30_000,
    );
    const warnings = first.proc
      .stderr()
      .split('\n')
      .filter((l) => l.includes('SNAPSHOTTER_CONTAINERD_UNREACHABLE'));
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({
      level: 40,
      code: 'SNAPSHOTTER_CONTAINERD_UNREACHABLE',
      msg: expect.stringMatching(/containerd_address/),
    });
    expect((await first.call('Stat', { key: 'layer' })).info).toMatchObject({ kind: 'COMMITTED' });
    first.client.close();
    first.proc.child.kill('SIGKILL');
    await first.proc.done;
    expect((await stat(socket)).isSocket()).toBe(true); // left behind by the killed process

    const second = await start();
    // containerd (root) and the socket's group may connect, nobody else.
    expect((await stat(socket)).mode & 0o777).toBe(0o660);
    // A second daemon on the same socket refuses to start and leaves the live one alone.
    const intruder = await spawnTs('src/bin.ts', ['--config', configFile]).done;
    expect(intruder.code).toBe(1);
    expect(intruder.stderr).toMatch(/another process serves .*sn\.sock/);
    expect((await second.call('Stat', { key: 'layer' })).info).toMatchObject({ kind: 'COMMITTED' });
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
