import { readFile } from 'node:fs/promises';
import { RegistryClient } from '@soci-ts/oci-referrers';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { pushLayout } from '@soci-ts/testing/images';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ContainerdClient,
  chainIds,
  type ImageSource,
  LABEL,
  type PullError,
  pullImage,
} from '../src/index.js';
import { recordingSource } from './support/recording-source.js';

const NS = 'pull-e2e';
const SNAPSHOTTER = 'overlayfs';
const HELLO = 'hello from layer 1\n';
const OVERRIDE = 'layer 2 wins\n';

let ctd: TestContainerd;
let server: TestRegistry;
let client: ContainerdClient;
let registries: RegistryClient;
let ref: string;
let manifestDigest: string;

beforeAll(async () => {
  [ctd, server] = await Promise.all([
    // overlayfs only: the proxy plugin's socket is left unserved.
    startContainerd({ snapshotterSocket: '/nonexistent/unused.sock', namespace: NS }),
    startRegistry(),
  ]);
  client = new ContainerdClient({ address: ctd.address, namespace: NS });
  // No retries: a stopped registry must fail the pull at once.
  registries = new RegistryClient({ retry: { maxRetries: 0 } });
  const image = await buildBusyboxImage([
    { 'bin/busybox': { busybox: true } },
    { 'etc/hello.txt': HELLO, 'etc/motd': 'first\n' },
    { 'etc/motd': OVERRIDE },
  ]);
  ref = await pushLayout(image, { host: server.host, repository: 'e2e/busybox', tag: 'v1' });
  manifestDigest = image.manifestDigest;
  await image.cleanup();
});

afterAll(async () => {
  client?.close();
  await registries?.close();
  await Promise.all([ctd?.stop(), server?.stop()]);
});

/** The repository a reference names, recording which blobs the pull downloads. */
const source = (reference: string) => recordingSource(registries.repository(reference));

/** `ctr` in the test namespace; its stdout. */
const ctr = async (args: string[]) => (await ctd.ctr(args)).stdout;

async function expectPullError(promise: Promise<unknown>, code: string): Promise<PullError> {
  const err = (await promise.then(
    () => undefined,
    (e: unknown) => e,
  )) as PullError | undefined;
  expect(err, `expected PullError ${code}`).toBeDefined();
  expect(err?.name).toBe('PullError');
  expect(err?.code).toBe(code);
  return err!;
}

describe('pullImage with overlayfs (every layer unpacked through Diff.Apply)', () => {
  test('pulls, records the image and runs a container from it', async () => {
    const registry = source(ref);
    const report = await pullImage({ client, ref, snapshotter: SNAPSHOTTER, registry });

    expect(report.name).toBe(ref);
    expect(report.manifest.digest).toBe(manifestDigest);
    expect(report.layers.map((l) => l.mode)).toEqual(['unpacked', 'unpacked', 'unpacked']);
    const busyboxSize = (await readFile('/bin/busybox')).byteLength;
    expect(report.layers[0]!.bytesFetched).toBeGreaterThan(busyboxSize / 4); // gzip of a static binary
    expect(report.bytesFetched).toBe(
      report.layers.reduce((n, l) => n + l.bytesFetched, 0) + report.manifest.size + report.config.size,
    );

    // Chain IDs as containerd names them: the top one is what the config's gc label points at.
    const config = JSON.parse((await client.content.readAll(report.config.digest)).toString()) as {
      rootfs: { diff_ids: string[] };
    };
    const chains = chainIds(config.rootfs.diff_ids);
    expect(report.layers.map((l) => l.chainId)).toEqual(chains);
    expect(report.chainId).toBe(chains[2]);
    const configInfo = await client.content.info(report.config.digest);
    expect(configInfo.labels[`containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`]).toBe(chains[2]);
    const manifestInfo = await client.content.info(report.manifest.digest);
    expect(manifestInfo.labels[LABEL.gcConfig]).toBe(report.config.digest);
    expect(manifestInfo.labels[`${LABEL.gcLayerPrefix}2`]).toBe(report.layers[2]!.digest);
    const layerInfo = await client.content.info(report.layers[1]!.digest);
    expect(layerInfo.labels[LABEL.uncompressed]).toBe(config.rootfs.diff_ids[1]);

    const snapshots = client.snapshots(SNAPSHOTTER);
    const top = await snapshots.stat(chains[2]!);
    expect(top.kind).toBe('COMMITTED');
    expect(top.parent).toBe(chains[1]);
    expect(top.labels[LABEL.snapshotRef]).toBe(chains[2]);
    expect(top.labels[LABEL.layerDigest]).toBe(report.layers[2]!.digest);
    expect(top.labels[LABEL.manifestDigest]).toBe(manifestDigest);
    // No extraction snapshot is left behind.
    expect((await snapshots.list()).map((s) => s.name).sort()).toEqual([...chains].sort());

    expect(await ctr(['images', 'ls', '-q'])).toContain(ref);
    // ctr run must find the image already unpacked: with the layer blobs gone it could not unpack again.
    for (const l of report.layers) await client.content.delete(l.digest);
    const hello = await ctr([
      'run',
      '--rm',
      '--snapshotter',
      SNAPSHOTTER,
      ref,
      'c1',
      '/bin/busybox',
      'cat',
      '/etc/hello.txt',
    ]);
    expect(hello).toBe(HELLO);
    const motd = await ctr([
      'run',
      '--rm',
      '--snapshotter',
      SNAPSHOTTER,
      ref,
      'c2',
      '/bin/busybox',
      'cat',
      '/etc/motd',
    ]);
    expect(motd).toBe(OVERRIDE);
  });

  test('pulling again is idempotent: every layer present, nothing downloaded but manifest and config', async () => {
    const registry = source(ref);
    const report = await pullImage({ client, ref, snapshotter: SNAPSHOTTER, registry });
    expect(report.layers.map((l) => l.mode)).toEqual(['present', 'present', 'present']);
    expect(report.layers.every((l) => l.bytesFetched === 0)).toBe(true);
    expect(registry.blobs).toEqual([report.config.digest]);
    expect((await client.images.list()).filter((i) => i.name === ref)).toHaveLength(1);
    expect(await client.leases.list()).toEqual([]);
  });

  test('a layer found present is held by the pull lease until the pull ends (gc cannot take it from the layers above)', async () => {
    // Asked when the top layer's turn comes: both layers below were found present by then.
    let held: Promise<{ id: string; type: string }[]> | undefined;
    const report = await pullImage({
      client,
      ref,
      snapshotter: SNAPSHOTTER,
      registry: source(ref),
      labels: (_layer, index) => {
        if (index === 2) {
          held = client.leases.list().then(([lease]) => (lease ? client.leases.listResources(lease.id) : []));
        }
        return {};
      },
    });
    expect(report.layers.map((l) => l.mode)).toEqual(['present', 'present', 'present']);
    const chains = report.layers.map((l) => l.chainId);
    expect(await held).toEqual(
      expect.arrayContaining([0, 1].map((i) => ({ id: chains[i], type: `snapshots/${SNAPSHOTTER}` }))),
    );
  });

  test('what the pull wrote survives garbage collection once its lease is gone', async () => {
    // A throwaway lease deleted with sync=true makes containerd run its collector before answering.
    const lease = await client.leases.create();
    await client.leases.delete(lease.id, { sync: true });
    const image = await client.images.get(ref);
    const config = await client.content.info(
      JSON.parse((await client.content.readAll(image.target.digest)).toString()).config.digest,
    );
    const top = config.labels[`containerd.io/gc.ref.snapshot.${SNAPSHOTTER}`]!;
    expect((await client.snapshots(SNAPSHOTTER).stat(top)).kind).toBe('COMMITTED');
    expect(
      await ctr([
        'run',
        '--rm',
        '--snapshotter',
        SNAPSHOTTER,
        ref,
        'c3',
        '/bin/busybox',
        'cat',
        '/etc/hello.txt',
      ]),
    ).toBe(HELLO);
  });

  test('two concurrent pulls of the same image both succeed and leave one set of snapshots', async () => {
    const fresh = client.withNamespace('pull-concurrent');
    const reports = await Promise.all(
      [0, 1].map(() => pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, registry: source(ref) })),
    );
    expect(reports[0]!.chainId).toBe(reports[1]!.chainId);
    const snapshots = await fresh.snapshots(SNAPSHOTTER).list();
    expect(snapshots.map((s) => s.kind)).toEqual(['COMMITTED', 'COMMITTED', 'COMMITTED']);
    expect(await fresh.content.listStatuses()).toEqual([]);
    expect((await fresh.images.list()).map((i) => i.name)).toEqual([ref]);
  });

  test('a layer whose bytes do not match its digest is DIGEST_MISMATCH and leaves nothing half-made', async () => {
    const fresh = client.withNamespace('pull-corrupt');
    const real = source(ref);
    const corrupting: ImageSource = {
      fetchImageManifest: real.fetchImageManifest,
      fetchBlob: async (d) => {
        const stream = await real.fetchBlob(d);
        if (typeof d === 'string' || d.mediaType.includes('config')) return stream;
        // Same length, one bit flipped in the first chunk, and no verification on the way.
        return (async function* () {
          let first = true;
          for await (const chunk of stream.iterator({ destroyOnReturn: true })) {
            const copy = Buffer.from(chunk as Buffer);
            if (first) copy[copy.length - 1]! ^= 1;
            first = false;
            yield copy;
          }
        })() as unknown as Awaited<ReturnType<ImageSource['fetchBlob']>>;
      },
    };
    await expectPullError(
      pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, registry: corrupting }),
      'DIGEST_MISMATCH',
    );
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
    expect(await fresh.content.listStatuses()).toEqual([]);
    expect(await fresh.images.list()).toEqual([]);
  });

  test('a reference by digest is recorded under that name', async () => {
    const fresh = client.withNamespace('pull-digest');
    const byDigest = `${server.host}/e2e/busybox@${manifestDigest}`;
    const report = await pullImage({
      client: fresh,
      ref: byDigest,
      snapshotter: SNAPSHOTTER,
      registry: source(byDigest),
    });
    expect(report.name).toBe(byDigest);
    expect((await fresh.images.get(byDigest)).target.digest).toBe(manifestDigest);
  });

  test('an abort between layers is ABORTED and leaves no snapshot, image or lease', async () => {
    const fresh = client.withNamespace('pull-abort');
    const controller = new AbortController();
    const real = source(ref);
    const aborting: ImageSource = {
      fetchImageManifest: real.fetchImageManifest,
      fetchBlob: async (d) => {
        // Abort while the first layer downloads: that layer completes, the next one never starts.
        if (typeof d !== 'string' && !d.mediaType.includes('config')) controller.abort();
        return real.fetchBlob(d);
      },
    };
    await expectPullError(
      pullImage({
        client: fresh,
        ref,
        snapshotter: SNAPSHOTTER,
        registry: aborting,
        signal: controller.signal,
      }),
      'ABORTED',
    );
    expect(real.blobs).toHaveLength(2); // config and the first layer only
    expect(await fresh.images.list()).toEqual([]);
    expect(await fresh.leases.list()).toEqual([]);
    // What was committed before the abort is left to containerd's garbage collector.
    const lease = await fresh.leases.create();
    await fresh.leases.delete(lease.id, { sync: true });
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
  });

  test('a missing image is IMAGE_NOT_FOUND and leaves nothing behind', async () => {
    const fresh = client.withNamespace('pull-missing');
    const missing = `${server.host}/e2e/nothing-here:v1`;
    await expectPullError(
      pullImage({
        client: fresh,
        ref: missing,
        snapshotter: SNAPSHOTTER,
        registry: source(missing),
      }),
      'IMAGE_NOT_FOUND',
    );
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
    expect(await fresh.images.list()).toEqual([]);
  });

  test('registry going down mid-pull is REGISTRY_UNREACHABLE and leaves no extraction snapshot', async () => {
    const doomed = await startRegistry();
    const image = await buildBusyboxImage([{ 'bin/busybox': { busybox: true } }, { 'etc/x': 'x\n' }]);
    const doomedRef = await pushLayout(image, { host: doomed.host, repository: 'e2e/doomed', tag: 'v1' });
    await image.cleanup();
    const fresh = client.withNamespace('pull-down');
    const real = source(doomedRef);
    // Manifest and config come through; the registry stops before the first layer download.
    const dying: ImageSource = {
      fetchImageManifest: real.fetchImageManifest,
      fetchBlob: async (d) => {
        if (typeof d !== 'string' && !d.mediaType.includes('config')) await doomed.stop();
        return real.fetchBlob(d);
      },
    };
    await expectPullError(
      pullImage({ client: fresh, ref: doomedRef, snapshotter: SNAPSHOTTER, registry: dying }),
      'REGISTRY_UNREACHABLE',
    );
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
    expect(await fresh.images.list()).toEqual([]);
    expect(await fresh.leases.list()).toEqual([]);
    // And with the registry down from the start.
    await expectPullError(
      pullImage({ client: fresh, ref: doomedRef, snapshotter: SNAPSHOTTER, registry: real }),
      'REGISTRY_UNREACHABLE',
    );
  });

  test('unpackFallback: false refuses to unpack and removes the prepared snapshot', async () => {
    const fresh = client.withNamespace('pull-nofallback');
    const registry = source(ref);
    await expectPullError(
      pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, registry, unpackFallback: false }),
      'UNPACK_DISABLED',
    );
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
  });

  test('containerd down is a typed CONTAINERD_ERROR (UNAVAILABLE underneath)', async () => {
    const nowhere = new ContainerdClient({ address: `${ctd.dir}/no-such.sock`, namespace: NS });
    try {
      const err = await expectPullError(
        pullImage({
          client: nowhere,
          ref,
          snapshotter: SNAPSHOTTER,
          registry: source(ref),
        }),
        'CONTAINERD_ERROR',
      );
      expect((err.cause as { code?: string }).code).toBe('UNAVAILABLE');
    } finally {
      nowhere.close();
    }
  });
});
