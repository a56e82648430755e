// The Kubernetes path: containerd's CRI plugin (the release under test), configured with
// `snapshotter = "soci"` and image labels passed on Prepare, pulls an image with a SOCI index and
// starts a pod container from it through our snapshotter, driven by crictl the way the kubelet
// drives it. On 1.x CRI pulls client-side; on 2.x through the transfer service (its default) or,
// with SOCI_TS_CRI_PULL=local, client-side (`disable_snapshot_annotations = false`).

import { createHash } from 'node:crypto';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { ContainerdClient, chainIds, isAlreadyExists, LABEL } from '@soci-ts/containerd-client';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { criPullModeUnderTest } from '@soci-ts/testing/containerd';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import { type BuiltImage, pushLayout } from '@soci-ts/testing/images';
import { waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { CRI_NAMESPACE, type CriStack, startCriStack } from './support/cri-stack.js';
import { NEXT_BUILD_STARTED, nextDaemonBuild } from './support/stack.js';

const SPAN = 64 * 1024;
const MIN_LAYER = 256 * 1024;
/** `soci create` flags: small spans and a small minimum, so both big layers get a zTOC. */
const INDEX_FLAGS = ['--span-size', String(SPAN), '--min-layer-size', String(MIN_LAYER), '--quiet'];
const md5 = (b: Uint8Array | string) => createHash('md5').update(b).digest('hex');

interface Descriptor {
  digest: string;
  size: number;
}

/** An image of three layers (busybox, a multi-span data layer, a tiny one) pushed with its SOCI index. */
interface IndexedImage {
  ref: string;
  image: BuiltImage;
  layers: Descriptor[];
  diffIds: string[];
  /** `later` files are read by nobody until the daemon restarted under the running container. */
  files: { big: Uint8Array; notes: string; motd: string; later: Uint8Array[] };
}

let stack: CriStack;
let client: ContainerdClient;
/** Every image built, for cleanup even when a test fails halfway. */
const built: BuiltImage[] = [];

async function pushIndexedImage(repository: string, seed: number): Promise<IndexedImage> {
  const files = {
    big: noiseBytes(3 * 1024 * 1024, seed),
    notes: `image ${repository}, read through CRI\n`.repeat(40),
    motd: `hello from ${repository}\n`,
    later: [1, 2, 3, 4].map((i) => noiseBytes(256 * 1024, seed + i)),
  };
  const image = await buildBusyboxImage([
    // A file naming the image keeps its first layer its own (umoci makes identical busybox layers
    // within one second, and a layer already present is not prepared again).
    { '/bin/busybox': { busybox: true }, '/etc/image-name': `${repository}\n` },
    {
      '/data/big.bin': files.big,
      '/data/notes.txt': files.notes,
      ...Object.fromEntries(files.later.map((bytes, i) => [`/data/later-${i}.bin`, bytes])),
    },
    { '/etc/motd': files.motd },
  ]);
  built.push(image);
  const ref = await pushLayout(image, { host: stack.registry.host, repository, tag: 'v1' });
  await stack.soci(['create', ref, ...INDEX_FLAGS]);
  await stack.soci(['push', ref, '--quiet']);
  const manifest = (await registryJson(`${repository}/manifests/v1`)) as {
    config: Descriptor;
    layers: Descriptor[];
  };
  const config = (await registryJson(`${repository}/blobs/${manifest.config.digest}`)) as {
    rootfs: { diff_ids: string[] };
  };
  return { ref, image, layers: manifest.layers, diffIds: config.rootfs.diff_ids, files };
}

async function registryJson(path: string): Promise<unknown> {
  const res = await fetch(`${stack.registry.url}/v2/${path}`, {
    headers: { accept: 'application/vnd.oci.image.manifest.v1+json' },
  });
  if (!res.ok) throw new Error(`GET ${path}: ${res.status}`);
  return res.json();
}

/** Blobs in containerd's content store (namespace k8s.io). */
async function contentDigests(): Promise<string[]> {
  const { stdout } = await stack.containerd.ctr(['content', 'ls', '-q']);
  return stdout.split('\n').filter(Boolean);
}

/** Labels the daemon stored for the committed snapshot `name` (the Prepare labels, plus its remote mark). */
async function daemonLabels(name: string): Promise<Record<string, string>> {
  const found = (await stack.daemonSnapshots()).find((s) => s.name === name);
  if (!found) throw new Error(`the daemon has no snapshot ${name}`);
  return found.labels;
}

/** The daemon's warnings and errors about `ref` (pino JSON lines, level >= 40), for failure messages. */
function daemonWarnings(ref: string): string {
  const lines = stack.daemon.output().split('\n');
  return lines.filter((l) => /"level":[4-6]0/.test(l) && l.includes(ref)).join('\n');
}

let podSeq = 0;
/** `crictl runp` a pod on the host network (no CNI here); resolves with the pod ID. */
async function runPod(): Promise<{ id: string; configFile: string }> {
  const name = `soci-pod-${++podSeq}`;
  const logDir = join(stack.dir, 'pod-logs', name);
  await mkdir(logDir, { recursive: true });
  const configFile = join(stack.dir, `${name}.json`);
  await writeFile(
    configFile,
    JSON.stringify({
      metadata: { name, namespace: 'default', uid: `${name}-uid`, attempt: 0 },
      log_directory: logDir,
      // NamespaceMode NODE = 2: share the host's network namespace.
      linux: { security_context: { namespace_options: { network: 2 } } },
    }),
  );
  const { stdout } = await stack.crictl(['runp', configFile]);
  return { id: stdout.trim(), configFile };
}

/** `crictl create` + `start` a container of `ref` in the pod running `script` with busybox sh. */
async function startContainer(
  pod: { id: string; configFile: string },
  ref: string,
  name: string,
  script: string,
): Promise<string> {
  const configFile = join(stack.dir, `${pod.id}-${name}.json`);
  await writeFile(
    configFile,
    JSON.stringify({
      metadata: { name },
      image: { image: ref },
      command: ['/bin/busybox', 'sh', '-c', script],
      log_path: `${name}.log`,
    }),
  );
  const { stdout } = await stack.crictl(['create', pod.id, configFile, pod.configFile]);
  const id = stdout.trim();
  await stack.crictl(['start', id]);
  return id;
}

/** Waits until the container's log (`crictl logs`) has `lines` lines, and returns it. */
async function logLines(id: string, lines: number): Promise<string[]> {
  let out: string[] = [];
  await waitUntil(
    `${lines} log lines of container ${id}`,
    async () => {
      out = (await stack.crictl(['logs', id])).stdout.split('\n').filter(Boolean);
      return out.length >= lines;
    },
    60_000,
  );
  return out;
}

/** The script of a container that prints what the test checks, then stays up for `crictl exec`. */
const PRINT_AND_WAIT =
  '/bin/busybox cat /etc/motd && /bin/busybox md5sum /data/big.bin && exec /bin/busybox sleep 2147483647';

beforeAll(async () => {
  stack = await startCriStack();
  client = new ContainerdClient({ address: stack.containerd.address, namespace: CRI_NAMESPACE });
}, 120_000);

afterAll(async () => {
  client?.close();
  await stack?.stop();
  for (const image of built) await image.cleanup();
}, 120_000);

const release = containerdUnderTest();
/** How CRI pulls here: 1.x always client-side; 2.x as SOCI_TS_CRI_PULL says. */
const pullMode = release.major >= 2 ? criPullModeUnderTest() : 'local';

describe(`Kubernetes path: containerd ${release.version} CRI (${pullMode} pull) with snapshotter = "soci"`, () => {
  let app: IndexedImage;
  let pod: { id: string; configFile: string };
  /** The pod's running app container. */
  let appContainer: string;

  it('crictl pull: CRI hands every layer to the daemon, which mounts the indexed ones lazily', async () => {
    app = await pushIndexedImage('cri/app', 23);
    await stack.crictl(['pull', app.ref]);

    // busybox and data layers have zTOCs (over --min-layer-size): lazy; the tiny one is unpacked.
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(2);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBe(1);
    expect(await stack.metric('soci_fallbacks_total')).toBe(0);
    // containerd fetched the manifest and config only: no layer blob is in its content store.
    const content = await contentDigests();
    for (const layer of app.layers) expect(content).not.toContain(layer.digest);
    // Nothing of the layers was read yet beyond what the zTOCs point at.
    expect(await stack.metric('soci_bytes_fetched_total')).toBeLessThan(app.layers[1]!.size / 4);
  });

  it(`pulled the way this run tests (${pullMode})`, async () => {
    // containerd 2.x warns when a CRI option makes it leave the transfer service for a local pull.
    const log = await readFile(stack.containerd.logFile, 'utf8');
    const fellBack = log.includes('Falling back to local image pull mode');
    expect(fellBack).toBe(release.major >= 2 && pullMode === 'local');
  });

  it(`records exactly which labels containerd ${release.version} CRI sends on Prepare`, async () => {
    const chains = chainIds(app.diffIds);
    const manifestDigest = app.image.manifestDigest;
    for (const [i, layer] of app.layers.entries()) {
      const labels = await daemonLabels(chains[i]!);
      console.info(`CRI Prepare labels of layer ${i}: ${JSON.stringify(labels)}`);
      expect(labels).toEqual({
        [LABEL.snapshotRef]: chains[i],
        [LABEL.imageRef]: app.ref,
        [LABEL.manifestDigest]: manifestDigest,
        [LABEL.layerDigest]: layer.digest,
        [LABEL.imageLayers]: app.layers
          .slice(i)
          .map((l) => l.digest)
          .join(','),
        [LABEL.remote]: 'remote snapshot',
      });
    }
  });

  it('runs a pod container whose files come through the lazy layers (crictl runp/create/start/logs/exec)', async () => {
    pod = await runPod();
    // CRI pulled the sandbox image into the soci snapshotter too; without an index, the daemon unpacked it.
    expect(await stack.metric('soci_fallbacks_total', { reason: 'no-soci-index' })).toBe(0);
    expect(await stack.metric('soci_layer_mounts_total', { kind: 'unpacked' })).toBeGreaterThanOrEqual(2);
    const id = await startContainer(pod, app.ref, 'app', PRINT_AND_WAIT);
    appContainer = id;
    expect(await logLines(id, 2)).toEqual([app.files.motd.trim(), `${md5(app.files.big)}  /data/big.bin`]);
    const { stdout } = await stack.crictl(['exec', '--sync', id, '/bin/busybox', 'cat', '/data/notes.txt']);
    // crictl prints the exec's stdout and then its (empty) stderr, each with Println.
    expect(stdout).toBe(`${app.files.notes}\n\n`);
    // The container's reads went to the registry through the daemon, not through containerd.
    const fetched = await stack.metric('soci_bytes_fetched_total');
    console.info(
      `bytes fetched by the daemon: ${fetched} of ${app.layers.map((l) => l.size).join(' + ')} layer bytes`,
    );
    expect(fetched).toBeGreaterThan(0);
    const content = await contentDigests();
    for (const layer of app.layers) expect(content).not.toContain(layer.digest);
  });

  // (a) SIGTERM, (b) SIGKILL, what `systemctl restart` does (the daemon's whole cgroup), (c) another build.
  const restarts = [
    ['SIGTERM', 'stopped with SIGTERM'],
    ['SIGKILL', 'killed with SIGKILL'],
    ['cgroup', 'killed with its whole cgroup (systemctl restart)'],
    ['next-build', 'replaced by another build'],
  ] as const;
  it.each(
    restarts.map(([how, what], i) => ({ how, what, i })),
  )('the running pod container keeps reading while the daemon is $what and starts again', async ({
    how,
    i,
  }) => {
    const next = how === 'next-build' ? await nextDaemonBuild() : undefined;
    try {
      const file = `/data/later-${i}.bin`;
      let read: Promise<string> | undefined;
      let settled = false;
      await stack.restartDaemon(
        how === 'next-build' ? 'SIGTERM' : how,
        async () => {
          read = stack
            .crictl(['exec', '--sync', appContainer, '/bin/busybox', 'md5sum', file])
            .then((r) => r.stdout);
          void read
            .finally(() => {
              settled = true;
            })
            .catch(() => undefined);
          await new Promise((r) => setTimeout(r, 1500));
          // No daemon: the read of a file nobody read yet waits in the FUSE keeper.
          expect(settled).toBe(false);
        },
        next?.bin,
      );
      expect((await read)?.split(' ')[0]).toBe(md5(app.files.later[i]!));
      if (next) expect(stack.daemon.output()).toContain(NEXT_BUILD_STARTED);
      await waitUntil(
        'the lazy layers taken over',
        async () => (await stack.metric('soci_fuse_session_restores_total', { result: 'taken_over' })) >= 2,
        60_000,
      );
      expect(await stack.metric('soci_fuse_session_restores_total', { result: 'remounted' })).toBe(0);
    } finally {
      if (next) {
        await stack.restartDaemon('SIGTERM');
        await next.remove();
      }
    }
    // And after it is running again: a read that never waited.
    const { stdout } = await stack.crictl([
      'exec',
      '--sync',
      appContainer,
      '/bin/busybox',
      'cat',
      '/data/notes.txt',
    ]);
    expect(stdout).toBe(`${app.files.notes}\n\n`);
  }, 240_000);

  it('mounts lazily when a Prepare lacks cri.manifest-digest: the daemon resolves the manifest from the image ref', async () => {
    // containerd's CRI (1.6.20 and later, 2.x through either pull) always sends the manifest
    // digest (see above); older CRIs and other clients do not. Prepare the layers through containerd with everything else CRI sends.
    const other = await pushIndexedImage('cri/other', 29);
    const chains = chainIds(other.diffIds);
    const lazyBefore = await stack.metric('soci_layer_mounts_total', { kind: 'lazy' });
    const fallbacksBefore = await stack.metric('soci_fallbacks_total');
    const lease = await client.leases.create({ expiresInMs: 10 * 60_000 });
    try {
      const snapshots = client.withLease(lease.id).snapshots('soci');
      for (const [i, layer] of other.layers.entries()) {
        const labels = {
          [LABEL.snapshotRef]: chains[i]!,
          [LABEL.imageRef]: other.ref,
          [LABEL.layerDigest]: layer.digest,
          [LABEL.imageLayers]: other.layers
            .slice(i)
            .map((l) => l.digest)
            .join(','),
        };
        const outcome = await snapshots
          .prepare(`extract-${i} ${chains[i]}`, chains[i - 1] ?? '', labels)
          .then(
            () => 'an active snapshot: the daemon declined the layer',
            (err: unknown) => (isAlreadyExists(err) ? 'committed remotely' : String(err)),
          );
        // ALREADY_EXISTS: the daemon mounted the layer and committed it under its chain ID.
        expect(outcome, daemonWarnings(other.ref)).toBe('committed remotely');
        expect(await daemonLabels(chains[i]!)).not.toHaveProperty(LABEL.manifestDigest);
      }
      expect(await stack.metric('soci_layer_mounts_total', { kind: 'lazy' })).toBe(lazyBefore + 2);
      expect(await stack.metric('soci_fallbacks_total')).toBe(fallbacksBefore);

      // CRI's pull now finds every layer's snapshot and downloads none; a container reads through them.
      await stack.crictl(['pull', other.ref]);
      const content = await contentDigests();
      for (const layer of other.layers) expect(content).not.toContain(layer.digest);
      const id = await startContainer(pod, other.ref, 'other', PRINT_AND_WAIT);
      expect(await logLines(id, 2)).toEqual([
        other.files.motd.trim(),
        `${md5(other.files.big)}  /data/big.bin`,
      ]);
    } finally {
      await client.leases.delete(lease.id);
    }
  });

  it('stops and removes the pod and its containers through CRI', async () => {
    await stack.crictl(['stopp', pod.id]);
    await stack.crictl(['rmp', pod.id]);
    expect((await stack.crictl(['ps', '-a', '-q'])).stdout.trim()).toBe('');
    expect((await stack.crictl(['pods', '-q'])).stdout.trim()).toBe('');
  });
});
