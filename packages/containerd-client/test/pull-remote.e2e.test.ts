import { RegistryClient } from '@soci-ts/oci-referrers';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { pushLayout } from '@soci-ts/testing/images';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, expect, test } from 'vitest';
import {
  ContainerdClient,
  type ContainerdError,
  chainIds,
  LABEL,
  type Labels,
  type PullError,
  pullImage,
} from '../src/index.js';
import { startFakeRemoteSnapshotter } from './support/fake-remote-snapshotter.js';
import { recordingSource } from './support/recording-source.js';

// The remote path of pullImage against a proxy snapshotter plugged into a real containerd: layers the
// snapshotter claims on Prepare are never downloaded; the others fall back to Diff.Apply.
const NS = 'pull-remote';
const INDEX_LABEL = 'containerd.io/snapshot/remote/soci.index.digest';
const INDEX_DIGEST = `sha256:${'5'.repeat(64)}`;
/** A Prepare with this label is never answered by the fake (a hung snapshotter). */
const HOLD_LABEL = 'containerd.io/snapshot/test.hold';
/** How soon an abort must end a call: generous for a loaded machine, far below any timeout. */
const PROMPT_MS = 2000;

let fake: Awaited<ReturnType<typeof startFakeRemoteSnapshotter>>;
let ctd: TestContainerd;
let server: TestRegistry;
let client: ContainerdClient;
let registries: RegistryClient;
let ref: string;

beforeAll(async () => {
  fake = await startFakeRemoteSnapshotter(
    (labels) => labels[INDEX_LABEL] !== undefined,
    (labels) => labels[HOLD_LABEL] !== undefined,
  );
  [ctd, server] = await Promise.all([
    startContainerd({ snapshotterSocket: fake.socket, snapshotterName: 'fake', namespace: NS }),
    startRegistry(),
  ]);
  client = new ContainerdClient({ address: ctd.address, namespace: NS });
  registries = new RegistryClient({ retry: { maxRetries: 0 } });
  const image = await buildBusyboxImage([
    { 'bin/busybox': { busybox: true } },
    { 'etc/one': '1\n' },
    { 'etc/two': '2\n' },
  ]);
  ref = await pushLayout(image, { host: server.host, repository: 'remote/busybox', tag: 'v1' });
  await image.cleanup();
});

afterAll(async () => {
  client?.close();
  await registries?.close();
  await Promise.all([ctd?.stop(), server?.stop()]);
  await fake?.stop();
});

const source = () => recordingSource(registries.repository(ref));

test('layers the snapshotter mounts remotely are not downloaded; the rest are unpacked', async () => {
  const registry = source();
  const report = await pullImage({
    client,
    ref,
    snapshotter: 'fake',
    source: registry,
    // Layers 0 and 1 "have a zTOC"; layer 2 does not.
    labels: (_layer, i): Labels => (i < 2 ? { [INDEX_LABEL]: INDEX_DIGEST } : {}),
  });
  expect(report.layers.map((l) => l.mode)).toEqual(['remote', 'remote', 'unpacked']);
  expect(registry.blobs).toEqual([report.config.digest, report.layers[2]!.digest]);
  expect(report.layers[0]!.bytesFetched).toBe(0);

  const config = JSON.parse((await client.content.readAll(report.config.digest)).toString()) as {
    rootfs: { diff_ids: string[] };
  };
  const chains = chainIds(config.rootfs.diff_ids);
  const digests = report.layers.map((l) => l.digest);

  // What reached the proxy plugin on the first Prepare, exactly.
  const first = fake.prepares[0]!;
  expect(first.parent).toBe('');
  expect(first.labels).toEqual({
    [LABEL.snapshotRef]: chains[0],
    [LABEL.imageRef]: ref,
    [LABEL.manifestDigest]: report.manifest.digest,
    [LABEL.layerDigest]: digests[0],
    [LABEL.imageLayers]: digests.join(','),
    [INDEX_LABEL]: INDEX_DIGEST,
  });
  // The second layer's Prepare names its parent by the backend name of the remote snapshot.
  expect(fake.prepares[1]!.parent).toBe(chains[0]);
  expect(fake.prepares[1]!.labels[LABEL.imageLayers]).toBe(digests.slice(1).join(','));
  expect(fake.prepares[2]!.labels[LABEL.layerDigest]).toBe(digests[2]);

  const sn = client.snapshots('fake');
  for (const chain of chains) expect((await sn.stat(chain)).kind).toBe('COMMITTED');
  expect((await sn.stat(chains[0]!)).labels['containerd.io/snapshot/remote']).toBe('remote snapshot');
  expect((await sn.stat(chains[2]!)).labels['containerd.io/snapshot/remote']).toBeUndefined();
  expect((await client.content.info(report.config.digest)).labels['containerd.io/gc.ref.snapshot.fake']).toBe(
    chains[2],
  );
  expect((await client.images.get(ref)).target.digest).toBe(report.manifest.digest);
  // Only the three committed layers remain in the snapshotter: no extraction snapshot left over.
  expect([...fake.entries.values()].map((e) => e.kind)).toEqual(['COMMITTED', 'COMMITTED', 'COMMITTED']);

  const again = await pullImage({ client, ref, snapshotter: 'fake', source: source() });
  expect(again.layers.map((l) => l.mode)).toEqual(['present', 'present', 'present']);
});

test('with unpackFallback off, a layer the snapshotter does not claim fails the pull and is removed', async () => {
  const other = client.withNamespace('pull-remote-strict');
  const before = fake.entries.size;
  const err = (await pullImage({
    client: other,
    ref,
    snapshotter: 'fake',
    source: source(),
    labels: (_layer, i): Labels => (i === 0 ? { [INDEX_LABEL]: INDEX_DIGEST } : {}),
    unpackFallback: false,
  }).catch((e: unknown) => e)) as PullError;
  expect(err.code).toBe('PULL_UNPACK_DISABLED');
  // Layer 0 was claimed remotely (it already existed in the backend); layer 1's extraction snapshot is gone
  // from containerd at once, and from the backend after containerd's next garbage collection.
  expect((await other.snapshots('fake').list()).map((s) => s.kind)).toEqual(['COMMITTED']);
  const lease = await other.leases.create();
  await other.leases.delete(lease.id, { sync: true });
  expect(fake.entries.size).toBe(before);
});

/** Aborts `controller` once the fake holds a Prepare; the call's error, how soon after the abort it came, and the held call. */
async function abortWhenHeld(controller: AbortController, reason: Error, call: Promise<unknown>) {
  const held = await fake.nextHeld();
  const abortedAt = performance.now();
  controller.abort(reason);
  const error = await call.then(
    () => undefined,
    (e: unknown) => e,
  );
  return { error, afterAbortMs: performance.now() - abortedAt, held };
}

test("a signal cancels a containerd call in flight, down to the snapshotter's Prepare", async () => {
  const controller = new AbortController();
  const reason = new Error('the test aborts');
  const view = client.withNamespace('pull-remote-cancel').withSignal(controller.signal);
  const prepare = view.snapshots('fake').prepare('held-1', '', { [HOLD_LABEL]: 'yes' });
  const { error, afterAbortMs, held } = await abortWhenHeld(controller, reason, prepare);
  expect(error).toMatchObject({
    name: 'ContainerdError',
    code: 'CONTAINERD_CANCELLED',
    method: 'snapshots.Prepare',
  });
  expect((error as ContainerdError).cause).toBe(reason);
  expect(afterAbortMs).toBeLessThan(PROMPT_MS);
  await held.cancelled; // containerd passed the cancellation on to the proxy snapshotter
});

test('an abort while the snapshotter holds a Prepare ends the pull at once with PULL_ABORTED, leaving no image or lease', async () => {
  const other = client.withNamespace('pull-remote-abort');
  const controller = new AbortController();
  const reason = new Error('the test aborts');
  const pull = pullImage({
    client: other,
    ref,
    snapshotter: 'fake',
    source: source(),
    labels: (_layer, i): Labels => (i === 1 ? { [HOLD_LABEL]: 'yes' } : { [INDEX_LABEL]: INDEX_DIGEST }),
    signal: controller.signal,
  });
  const { error, afterAbortMs, held } = await abortWhenHeld(controller, reason, pull);
  expect(error).toMatchObject({ name: 'PullError', code: 'PULL_ABORTED' });
  expect((error as PullError).cause).toBe(reason);
  expect(afterAbortMs).toBeLessThan(PROMPT_MS);
  await held.cancelled;
  expect(await other.images.list()).toEqual([]);
  expect(await other.leases.list()).toEqual([]);
  expect(await other.content.listStatuses()).toEqual([]);
});
