import { createHash, randomBytes } from 'node:crypto';
import { isSociError } from '@soci-ts/errors';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  CONTAINERD_PROTO_FILES,
  ContainerdClient,
  ContainerdError,
  isNotFound,
  loadContainerdProtos,
} from '../src/index.js';

let ctd: TestContainerd;
let client: ContainerdClient;

beforeAll(async () => {
  // No proxy snapshotter is used here; the plugin's socket is left unserved.
  ctd = await startContainerd({ snapshotterSocket: '/nonexistent/unused.sock', namespace: 'client-test' });
  client = new ContainerdClient({ address: ctd.address, namespace: 'client-test' });
});
afterAll(async () => {
  client?.close();
  await ctd?.stop();
});

/** `ctr` in the test namespace; its stdout. */
const ctr = async (args: string[]) => (await ctd.ctr(args)).stdout;

const sha256 = (b: Uint8Array) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function rejection(promise: Promise<unknown>): Promise<ContainerdError> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(ContainerdError);
  return err as ContainerdError;
}

test('protos load with every service the client uses', () => {
  const root = loadContainerdProtos() as unknown as {
    containerd: { services: Record<string, { v1: Record<string, unknown> }> };
  };
  const services = root.containerd.services;
  for (const name of Object.keys(CONTAINERD_PROTO_FILES)) expect(Object.keys(services)).toContain(name);
  expect(typeof services.snapshots?.v1.Snapshots).toBe('function');
  expect(typeof services.content?.v1.Content).toBe('function');
});

test('version answers with the release under test', async () => {
  // The binary's --version and the Version API name the same release.
  expect((await client.version()).version).toBe(ctd.release.version);
});

describe('content', () => {
  test('writes a multi-chunk blob, reads it back whole and by range', async () => {
    const data = randomBytes(3 * 1024 * 1024 + 17);
    const digest = sha256(data);
    const res = await client.content.writeBlob({
      ref: `test-${digest}`,
      expected: { digest, size: data.length },
      data: (async function* () {
        for (let at = 0; at < data.length; at += 700_000) yield data.subarray(at, at + 700_000);
      })(),
      labels: { 'test/label': 'one' },
    });
    expect(res).toEqual({ digest, size: data.length, existed: false, written: data.length });
    expect(Buffer.compare(await client.content.readAll(digest), data)).toBe(0);
    const part: Buffer[] = [];
    for await (const p of client.content.read(digest, { offset: 1000, size: 5000 })) part.push(p);
    expect(Buffer.compare(Buffer.concat(part), data.subarray(1000, 6000))).toBe(0);
    const info = await client.content.info(digest);
    expect(info).toMatchObject({ digest, size: data.length, labels: { 'test/label': 'one' } });
  });

  test('an existing blob is not re-sent; its labels are still applied', async () => {
    const data = Buffer.from('existing blob\n');
    const digest = sha256(data);
    await client.content.writeBlob({ ref: 'exists-1', expected: { digest, size: data.length }, data });
    let opened = false;
    const res = await client.content.writeBlob({
      ref: 'exists-2',
      expected: { digest, size: data.length },
      data: () => {
        opened = true;
        return data;
      },
      labels: { 'test/again': 'yes' },
    });
    expect(res.existed).toBe(true);
    expect(opened).toBe(false);
    expect((await client.content.info(digest)).labels['test/again']).toBe('yes');
  });

  test('bytes that do not match the expected digest are refused and leave no ingest', async () => {
    const data = Buffer.from('the real bytes\n');
    const wrong = sha256(Buffer.from('other bytes\n'));
    const err = await rejection(
      client.content.writeBlob({ ref: 'mismatch', expected: { digest: wrong, size: data.length }, data }),
    );
    expect(err.code).toBe('CONTAINERD_FAILED_PRECONDITION');
    expect(await client.content.listStatuses()).toEqual([]);
    expect(isNotFound(await rejection(client.content.info(wrong)))).toBe(true);
  });

  test('too many bytes are refused before containerd sees them', async () => {
    const data = Buffer.from('longer than announced\n');
    const err = await rejection(
      client.content.writeBlob({ ref: 'long', expected: { digest: sha256(data), size: 5 }, data }),
    );
    expect(err.code).toBe('CONTAINERD_FAILED_PRECONDITION');
    expect(await client.content.listStatuses()).toEqual([]);
  });
});

describe('images', () => {
  test('create, get, list, update, delete with typed errors', async () => {
    const target = {
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      digest: sha256(Buffer.from('m')),
      size: 1,
    };
    const created = await client.images.create({ name: 'example.com/a:1', target, labels: { x: '1' } });
    expect(created).toMatchObject({ name: 'example.com/a:1', target, labels: { x: '1' } });
    expect((await rejection(client.images.create({ name: 'example.com/a:1', target }))).code).toBe(
      'CONTAINERD_ALREADY_EXISTS',
    );
    expect((await client.images.get('example.com/a:1')).target).toEqual(target);
    expect((await client.images.list()).map((i) => i.name)).toContain('example.com/a:1');
    const updated = await client.images.update({
      name: 'example.com/a:1',
      target: { ...target, size: 2 },
      labels: {},
    });
    expect(updated.target.size).toBe(2);
    await client.images.delete('example.com/a:1');
    const missing = await rejection(client.images.get('example.com/a:1'));
    expect(missing).toMatchObject({
      name: 'ContainerdError',
      code: 'CONTAINERD_NOT_FOUND',
      method: 'images.Get',
    });
    expect(missing.message).toMatch(/^containerd images\.Get: /);
    expect(isSociError(missing)).toBe(true);
    expect(await ctr(['images', 'ls', '-q'])).toBe('');
  });
});

describe('snapshots and leases', () => {
  test('prepare, mounts, commit, view, stat, usage, remove on overlayfs', async () => {
    // Under a lease: containerd's garbage collector may otherwise remove the unreferenced view
    // between two calls (it runs after deletions of earlier tests).
    const lease = await client.leases.create({ expiresInMs: 60_000 });
    const sn = client.withLease(lease.id).snapshots('overlayfs');
    const mounts = await sn.prepare('active-1', '', { 'containerd.io/snapshot/x': 'y' });
    expect(mounts[0]?.type).toBe('bind');
    expect(await sn.mounts('active-1')).toEqual(mounts);
    await sn.commit('committed-1', 'active-1', { 'test/c': '1' });
    const info = await sn.stat('committed-1');
    expect(info).toMatchObject({ name: 'committed-1', kind: 'COMMITTED', parent: '' });
    expect(info.labels['test/c']).toBe('1');
    const view = await sn.view('view-1', 'committed-1');
    expect(view[0]?.type).toBe('bind');
    expect((await sn.stat('view-1')).kind).toBe('VIEW');
    expect((await sn.usage('committed-1')).inodes).toBeGreaterThanOrEqual(1);
    expect((await rejection(sn.prepare('view-1', 'committed-1'))).code).toBe('CONTAINERD_ALREADY_EXISTS');
    expect((await rejection(sn.prepare('x', 'no-such-parent'))).code).toBe('CONTAINERD_NOT_FOUND');
    expect((await rejection(sn.remove('committed-1'))).code).toBe('CONTAINERD_FAILED_PRECONDITION'); // has a child
    await sn.remove('view-1');
    await sn.remove('committed-1');
    expect(await sn.list()).toEqual([]);
    await client.leases.delete(lease.id, { sync: true });
  });

  test('what is created under a lease is collected when the lease goes', async () => {
    const lease = await client.leases.create({ expiresInMs: 60_000 });
    expect(lease.labels['containerd.io/gc.expire']).toBeDefined();
    const leased = client.withLease(lease.id);
    expect(leased.lease).toBe(lease.id);
    await leased.snapshots('overlayfs').prepare('leased-1');
    const data = Buffer.from('leased blob\n');
    await leased.content.writeBlob({
      ref: 'leased',
      expected: { digest: sha256(data), size: data.length },
      data,
    });
    expect((await client.leases.listResources(lease.id)).map((r) => r.type).sort()).toEqual([
      'content',
      'snapshots/overlayfs',
    ]);
    await client.leases.delete(lease.id, { sync: true });
    expect(isNotFound(await rejection(client.snapshots('overlayfs').stat('leased-1')))).toBe(true);
    expect(isNotFound(await rejection(client.content.info(sha256(data))))).toBe(true);
  });

  test('namespaces isolate: a snapshot of one namespace is not found in another', async () => {
    const sn = client.snapshots('overlayfs');
    await sn.prepare('ns-1');
    expect((await rejection(client.withNamespace('other').snapshots('overlayfs').stat('ns-1'))).code).toBe(
      'CONTAINERD_NOT_FOUND',
    );
    await sn.remove('ns-1');
    expect((await client.namespaces.list()).map((n) => n.name)).toContain('client-test');
  });
});

test('a socket with nobody behind it is UNAVAILABLE', async () => {
  const nowhere = new ContainerdClient({ address: `${ctd.dir}/nobody.sock`, namespace: 'x' });
  try {
    const err = await rejection(nowhere.version());
    expect(err).toMatchObject({ code: 'CONTAINERD_UNAVAILABLE', method: 'version.Version' });
    expect(err.unreachable).toBe(`${ctd.dir}/nobody.sock`);
    expect(err.message).toMatch(/^cannot reach containerd at .*containerd running/);
  } finally {
    nowhere.close();
  }
});

describe('a view with a signal', () => {
  test('an aborted signal fails unary, streaming and Write calls with CANCELLED, its reason as cause', async () => {
    const reason = new Error('stop');
    const view = client.withSignal(AbortSignal.abort(reason));
    expect(view.signal?.aborted).toBe(true);
    const data = Buffer.from('never written\n');
    const calls: [string, Promise<unknown>][] = [
      ['version.Version', view.version()],
      ['snapshots.List', view.snapshots('overlayfs').list()],
      [
        'content.Write',
        view.content.writeBlob({
          ref: 'cancelled',
          expected: { digest: sha256(data), size: data.length },
          data,
        }),
      ],
    ];
    for (const [method, call] of calls) {
      const err = await rejection(call);
      expect(err).toMatchObject({ code: 'CONTAINERD_CANCELLED', method });
      expect(err.cause).toBe(reason);
    }
    expect(await client.content.listStatuses()).toEqual([]);
    // The view it came from, and views made from it without the signal, are not cancelled.
    expect((await view.withSignal(undefined).version()).version).toBe(ctd.release.version);
    expect(view.withLease('l').withNamespace('n').signal).toBe(view.signal);
  });

  test('an abort in the middle of a content Write cancels it and leaves no ingest', async () => {
    const controller = new AbortController();
    const reason = new Error('stop mid-write');
    const data = randomBytes(256 * 1024);
    const write = client.withSignal(controller.signal).content.writeBlob({
      ref: 'aborted-mid-write',
      expected: { digest: sha256(data), size: data.length * 2 },
      data: (async function* () {
        yield data; // sent and answered
        controller.abort(reason);
        yield data; // its WRITE is cancelled
      })(),
    });
    const err = await rejection(write);
    expect(err).toMatchObject({ code: 'CONTAINERD_CANCELLED', method: 'content.Write' });
    expect(err.cause).toBe(reason);
    expect(await client.content.listStatuses()).toEqual([]);
  });
});

test('an abort while the data source is slow to give its next piece ends the Write at once', async () => {
  const controller = new AbortController();
  const reason = new Error('stop while waiting for data');
  const data = randomBytes(64 * 1024);
  const write = client.withSignal(controller.signal).content.writeBlob({
    ref: 'aborted-while-waiting',
    expected: { digest: sha256(data), size: data.length * 2 },
    data: (async function* () {
      yield data;
      setTimeout(() => controller.abort(reason), 50);
      await new Promise(() => undefined); // a source that never gives its next piece
      yield data;
    })(),
  });
  const started = performance.now();
  const err = await rejection(write);
  expect(performance.now() - started).toBeLessThan(2000);
  expect(err).toMatchObject({ code: 'CONTAINERD_CANCELLED', method: 'content.Write' });
  expect(err.cause).toBe(reason);
  expect(await client.content.listStatuses()).toEqual([]);
});
