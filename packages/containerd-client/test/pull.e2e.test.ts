import { readFile } from 'node:fs/promises';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { findCode, systemCodeOf } from '@soci-ts/errors';
import { RegistryClient } from '@soci-ts/oci-referrers';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { startContainerd, type TestContainerd } from '@soci-ts/testing/containerd';
import { pushLayout } from '@soci-ts/testing/images';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, describe, expect, test } from 'vitest';
import {
  ContainerdClient,
  chainIds,
  LABEL,
  type PullError,
  type PullSource,
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

/**
 * An aborted pull left no image, lease or ingest; what it committed before the abort goes with
 * containerd's garbage collector (run here by deleting a lease synchronously).
 */
async function expectNothingLeft(fresh: ContainerdClient): Promise<void> {
  expect(await fresh.images.list()).toEqual([]);
  expect(await fresh.leases.list()).toEqual([]);
  expect(await fresh.content.listStatuses()).toEqual([]);
  const lease = await fresh.leases.create();
  await fresh.leases.delete(lease.id, { sync: true });
  expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
}

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
    const report = await pullImage({ client, ref, snapshotter: SNAPSHOTTER, source: registry });

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
    const report = await pullImage({ client, ref, snapshotter: SNAPSHOTTER, source: registry });
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
      source: source(ref),
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
      [0, 1].map(() => pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, source: source(ref) })),
    );
    expect(reports[0]!.chainId).toBe(reports[1]!.chainId);
    const snapshots = await fresh.snapshots(SNAPSHOTTER).list();
    expect(snapshots.map((s) => s.kind)).toEqual(['COMMITTED', 'COMMITTED', 'COMMITTED']);
    expect(await fresh.content.listStatuses()).toEqual([]);
    expect((await fresh.images.list()).map((i) => i.name)).toEqual([ref]);
  });

  test('a layer whose bytes do not match its digest fails in the content writer and leaves nothing half-made', async () => {
    const fresh = client.withNamespace('pull-corrupt');
    const real = source(ref);
    const corrupting: PullSource = {
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
        })() as unknown as Awaited<ReturnType<PullSource['fetchBlob']>>;
      },
    };
    const err = await expectPullError(
      pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, source: corrupting }),
      'PULL_CONTAINERD_FAILED',
    );
    expect(findCode(err, 'CONTAINERD_FAILED_PRECONDITION')?.message).toMatch(/served wrong bytes/);
    expect(err.message).toMatch(
      /^download layer sha256:[0-9a-f]{64} into the content store: containerd content\.Write: /,
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
      source: source(byDigest),
    });
    expect(report.name).toBe(byDigest);
    expect((await fresh.images.get(byDigest)).target.digest).toBe(manifestDigest);
  });

  test('an abort while a layer downloads is PULL_ABORTED and leaves no snapshot, ingest, image or lease', async () => {
    const fresh = client.withNamespace('pull-abort');
    const controller = new AbortController();
    const reason = new Error('the test aborts');
    const real = source(ref);
    const aborting: PullSource = {
      fetchImageManifest: real.fetchImageManifest,
      fetchBlob: async (d) => {
        // Abort as the first layer's download starts (this stream is not given the signal): its
        // content Write is cancelled, the next layer never starts.
        if (typeof d !== 'string' && !d.mediaType.includes('config')) controller.abort(reason);
        return real.fetchBlob(d);
      },
    };
    const err = await expectPullError(
      pullImage({
        client: fresh,
        ref,
        snapshotter: SNAPSHOTTER,
        source: aborting,
        signal: controller.signal,
      }),
      'PULL_ABORTED',
    );
    expect(err.cause).toBe(reason);
    expect(real.blobs).toHaveLength(2); // config and the first layer only
    await expectNothingLeft(fresh);
  });

  test('an abort while the manifest or a layer is half read ends the pull at once with PULL_ABORTED', async () => {
    const fresh = client.withNamespace('pull-abort-read');
    const real = source(ref);
    for (const stalled of ['manifest', 'layer'] as const) {
      const stall = await startStallingServer();
      try {
        const stallRepo = registries.repository(`${stall.host}/e2e/busybox`);
        // The stalled read goes to the stalling server, through the options the pull passes.
        const registry: PullSource = {
          fetchImageManifest: (reference, platform, options) =>
            (stalled === 'manifest' ? stallRepo : real).fetchImageManifest(reference, platform, options),
          fetchBlob: (blob, options) =>
            stalled === 'layer' && typeof blob !== 'string' && !blob.mediaType.includes('config')
              ? stallRepo.fetchBlob(blob, options)
              : real.fetchBlob(blob, options),
        };
        const controller = new AbortController();
        const reason = new Error(`the test aborts the ${stalled} read`);
        const pull = pullImage({
          client: fresh,
          ref,
          snapshotter: SNAPSHOTTER,
          source: registry,
          signal: controller.signal,
        });
        await stall.arrived;
        await new Promise((resolve) => setTimeout(resolve, 50)); // the half body is on its way
        const abortedAt = performance.now();
        controller.abort(reason);
        const err = await expectPullError(pull, 'PULL_ABORTED');
        expect(performance.now() - abortedAt).toBeLessThan(2000);
        expect(err.cause).toBe(reason);
      } finally {
        await stall.stop();
      }
    }
    await expectNothingLeft(fresh);
  });

  test("a missing image is PULL_REGISTRY_FAILED with the registry's not-found code, and leaves nothing behind", async () => {
    const fresh = client.withNamespace('pull-missing');
    const missing = `${server.host}/e2e/nothing-here:v1`;
    const err = await expectPullError(
      pullImage({
        client: fresh,
        ref: missing,
        snapshotter: SNAPSHOTTER,
        source: source(missing),
      }),
      'PULL_REGISTRY_FAILED',
    );
    expect(findCode(err, 'REGISTRY_MANIFEST_UNKNOWN', 'REGISTRY_NAME_UNKNOWN')).toBeDefined();
    expect(err.message).toMatch(new RegExp(`^resolve ${missing}: `));
    expect(err.message).not.toMatch(/is the registry up/);
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
    expect(await fresh.images.list()).toEqual([]);
  });

  test('registry going down mid-pull is PULL_REGISTRY_FAILED with a hint, and leaves no extraction snapshot', async () => {
    const doomed = await startRegistry();
    const image = await buildBusyboxImage([{ 'bin/busybox': { busybox: true } }, { 'etc/x': 'x\n' }]);
    const doomedRef = await pushLayout(image, { host: doomed.host, repository: 'e2e/doomed', tag: 'v1' });
    await image.cleanup();
    const fresh = client.withNamespace('pull-down');
    const real = source(doomedRef);
    // Manifest and config come through; the registry stops before the first layer download.
    const dying: PullSource = {
      fetchImageManifest: real.fetchImageManifest,
      fetchBlob: async (d) => {
        if (typeof d !== 'string' && !d.mediaType.includes('config')) await doomed.stop();
        return real.fetchBlob(d);
      },
    };
    const err = await expectPullError(
      pullImage({ client: fresh, ref: doomedRef, snapshotter: SNAPSHOTTER, source: dying }),
      'PULL_REGISTRY_FAILED',
    );
    expect(findCode(err, 'REGISTRY_NETWORK')).toBeDefined();
    expect(err.message).toMatch(/\(is the registry up and the address right\?\)$/);
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
    expect(await fresh.images.list()).toEqual([]);
    expect(await fresh.leases.list()).toEqual([]);
    // And with the registry down from the start.
    const down = await expectPullError(
      pullImage({ client: fresh, ref: doomedRef, snapshotter: SNAPSHOTTER, source: real }),
      'PULL_REGISTRY_FAILED',
    );
    expect(systemCodeOf(down)).toBe('ECONNREFUSED');
    expect(down.message).toMatch(/is the registry up and the address right/);
  });

  test('unpackFallback: false refuses to unpack and removes the prepared snapshot', async () => {
    const fresh = client.withNamespace('pull-nofallback');
    const registry = source(ref);
    await expectPullError(
      pullImage({ client: fresh, ref, snapshotter: SNAPSHOTTER, source: registry, unpackFallback: false }),
      'PULL_UNPACK_DISABLED',
    );
    expect(await fresh.snapshots(SNAPSHOTTER).list()).toEqual([]);
  });

  test('containerd down is PULL_CONTAINERD_FAILED (CONTAINERD_UNAVAILABLE underneath)', async () => {
    const nowhere = new ContainerdClient({ address: `${ctd.dir}/no-such.sock`, namespace: NS });
    try {
      const err = await expectPullError(
        pullImage({
          client: nowhere,
          ref,
          snapshotter: SNAPSHOTTER,
          source: source(ref),
        }),
        'PULL_CONTAINERD_FAILED',
      );
      expect((err.cause as { code?: string }).code).toBe('CONTAINERD_UNAVAILABLE');
      expect(err.message).toMatch(/^create lease: cannot reach containerd at /);
    } finally {
      nowhere.close();
    }
  });
});

/**
 * A registry that answers every request with its headers and half of a body, then stalls (timeouts
 * are far away): only an abort ends a read of it. `arrived` resolves at the first request.
 */
async function startStallingServer(): Promise<{
  host: string;
  arrived: Promise<void>;
  stop(): Promise<void>;
}> {
  const body = Buffer.alloc(64 * 1024, 7);
  let arrive: () => void = () => undefined;
  const arrived = new Promise<void>((resolve) => {
    arrive = resolve;
  });
  const server = createServer((req, res) => {
    req.resume();
    res.writeHead(200, {
      'content-type': 'application/vnd.oci.image.manifest.v1+json',
      'content-length': String(body.length),
    });
    res.write(body.subarray(0, body.length / 2));
    arrive();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    arrived,
    stop: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
