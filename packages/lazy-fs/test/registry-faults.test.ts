import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import {
  type Descriptor,
  MediaType,
  RegistryClient,
  type RegistryClientOptions,
} from '@soci-ts/oci-referrers';
import { type FaultProxy, startFaultProxy } from '@soci-ts/testing/http-proxy';
import { startRegistry, type TestRegistry } from '@soci-ts/testing/registry';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LazyFsError, mountRemoteLayer, RemoteLayer, type RemoteLayerOptions } from '../src/index.js';
import {
  type BlobFault,
  type BlobFaultFront,
  DAMAGING_FAULTS,
  STALL_FAULTS,
  startBlobFaultFront,
} from './blob-fault-front.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  readInChild,
  tempDir,
  writeTree,
} from './helpers.js';

// Reads of a layer stored in a real registry (Debian's docker-registry), through a fault proxy,
// with the production client (RegistryClient.blobReader): whatever the network does, a read
// returns the right bytes or fails with EIO, and reads succeed again once the network heals.

const SPAN = 64 * 1024;
const canRegistry = existsSync('/usr/bin/docker-registry');
const canFuse = process.getuid?.() === 0 && existsSync('/dev/fuse');
const REPOSITORY = 'lazy-fs/faults';

const files: Record<string, Uint8Array> = {
  'etc/small.txt': compressibleBytes(700, 1),
  'usr/lib/one-span.bin': compressibleBytes(40_000, 2),
  'usr/lib/multi-span.bin': compressibleBytes(900_000, 3),
  'usr/share/random.bin': randomBytes(300_000, 4),
  'var/big.bin': compressibleBytes(2_500_000, 5),
};
const paths = Object.keys(files);

function randomBytes(n: number, seed: number): Uint8Array {
  const out = new Uint8Array(n);
  let x = seed * 0x9e3779b9;
  for (let i = 0; i < n; i++) {
    x = (Math.imul(x, 1664525) + 1013904223) >>> 0;
    out[i] = x >>> 24;
  }
  return out;
}

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe.skipIf(!canRegistry)('lazy reads from a real registry through network faults', () => {
  let work: string;
  let built: BuiltLayer;
  let registry: TestRegistry;
  let faultProxy: FaultProxy;
  let front: BlobFaultFront;
  let descriptor: Descriptor;
  const clients: RegistryClient[] = [];
  const layers: RemoteLayer[] = [];

  beforeAll(async () => {
    work = await tempDir('registry');
    await writeTree(join(work, 'root'), files);
    built = await buildLayer(join(work, 'root'), join(work, 'layer'), { spanSize: SPAN });
    registry = await startRegistry();
    faultProxy = await startFaultProxy(registry);
    front = await startBlobFaultFront(faultProxy);
    const pusher = client({ host: registry.host });
    descriptor = await pusher
      .repository(`${registry.host}/${REPOSITORY}`)
      .pushBlob(await readFile(built.blobPath), { mediaType: MediaType.OciLayerGzip });
    expect(descriptor).toMatchObject({ digest: built.digest, size: built.size });
  }, 120_000);

  afterAll(async () => {
    for (const layer of layers) await layer.close();
    for (const c of clients) await c.close();
    await front?.stop();
    await faultProxy?.stop();
    await registry?.stop();
    if (work) await rm(work, { recursive: true, force: true });
  });

  /** A client with fast retries; `stallMs` bounds header and body waits (a stalled registry). */
  function client(options: { host?: string; stallMs?: number; maxRetries?: number } = {}): RegistryClient {
    const settings: RegistryClientOptions = {
      hosts: { [options.host ?? front.host]: { plainHttp: true } },
      retry: { maxRetries: options.maxRetries ?? 2, baseDelayMs: 1, maxDelayMs: 5 },
      timeouts: { headersMs: options.stallMs ?? 5_000, bodyStallMs: options.stallMs ?? 5_000 },
    };
    const c = new RegistryClient(settings);
    clients.push(c);
    return c;
  }

  /** A layer read through the fault front, with no memory cache: every read goes to the network. */
  function remoteLayer(c: RegistryClient, extra: Partial<RemoteLayerOptions> = {}): RemoteLayer {
    const layer = new RemoteLayer({
      layer: { digest: descriptor.digest, size: descriptor.size },
      ztoc: built.ztoc,
      blob: c.repository(`${front.host}/${REPOSITORY}`).blobReader(descriptor),
      memoryBudgetBytes: 0,
      retryDelayMs: 1,
      ...extra,
    });
    layers.push(layer);
    return layer;
  }

  type Outcome = 'exact' | 'EIO';

  /** Reads a range and classifies the result; a wrong byte or any other error fails the test. */
  async function readChecked(
    layer: RemoteLayer,
    path: string,
    offset: number,
    length: number,
  ): Promise<Outcome> {
    const want = files[path]!.subarray(offset, offset + length);
    let got: Uint8Array;
    try {
      got = await layer.read(path, offset, length);
    } catch (err) {
      expect(err, `${path} @${offset}+${length}`).toBeInstanceOf(LazyFsError);
      expect((err as LazyFsError).errno, (err as Error).message).toBe(5);
      return 'EIO';
    }
    expect(got.length, `${path} @${offset}+${length}`).toBe(want.length);
    expect(Buffer.from(got).equals(Buffer.from(want)), `${path} @${offset}+${length}: wrong bytes`).toBe(
      true,
    );
    return 'exact';
  }

  /** A few reads over every file: starts, middles that cross spans, ends. */
  function sampleReads(): [string, number, number][] {
    return paths.flatMap((path): [string, number, number][] => {
      const size = files[path]!.length;
      return [
        [path, 0, 4096],
        [path, Math.floor(size / 3), Math.min(size, 3 * SPAN)],
        [path, Math.max(0, size - 1000), 1000],
      ];
    });
  }

  it('reads every file byte-exact through both proxies with no fault', async () => {
    const layer = remoteLayer(client());
    const before = front.blobGets;
    for (const path of paths) expect(await readChecked(layer, path, 0, files[path]!.length)).toBe('exact');
    expect(front.blobGets).toBeGreaterThan(before);
    expect(faultProxy.requests.some((r) => r.range?.startsWith('bytes='))).toBe(true);
  });

  for (const fault of DAMAGING_FAULTS) {
    it(`fails every read with EIO while the registry answers "${fault}", then reads byte-exact`, async () => {
      const layer = remoteLayer(client());
      front.always = fault;
      try {
        for (const [path, offset, length] of sampleReads()) {
          expect(await readChecked(layer, path, offset, length), `${fault}: ${path}@${offset}`).toBe('EIO');
        }
      } finally {
        front.clear();
      }
      expect(front.applied.get(fault)).toBeGreaterThan(0);
      for (const [path, offset, length] of sampleReads()) {
        expect(await readChecked(layer, path, offset, length)).toBe('exact');
      }
      if (['corrupt', 'shifted'].includes(fault)) expect(layer.stats().verifyFailures).toBeGreaterThan(0);
    });
  }

  for (const fault of STALL_FAULTS) {
    it(`fails with EIO while the registry stalls (${fault}), then reads byte-exact`, async () => {
      const layer = remoteLayer(client({ stallMs: 1000, maxRetries: 1 }), { maxAttempts: 2 });
      front.always = fault;
      try {
        expect(await readChecked(layer, 'usr/lib/multi-span.bin', 100_000, 200_000)).toBe('EIO');
      } finally {
        front.clear();
      }
      expect(front.applied.get(fault)).toBeGreaterThan(0);
      for (const [path, offset, length] of sampleReads()) {
        expect(await readChecked(layer, path, offset, length)).toBe('exact');
      }
    });
  }

  it('reads byte-exact from a registry that ignores Range (whole blob, sliced)', async () => {
    const layer = remoteLayer(client());
    front.always = 'ignore-range';
    try {
      for (const [path, offset, length] of sampleReads().slice(0, 6)) {
        expect(await readChecked(layer, path, offset, length)).toBe('exact');
      }
    } finally {
      front.clear();
    }
    expect(front.applied.get('ignore-range')).toBeGreaterThan(0);
  });

  it('never returns a wrong byte under random per-request faults, and heals (property)', async () => {
    const layer = remoteLayer(client(), { maxAttempts: 2 });
    const kinds: (BlobFault | undefined)[] = [...DAMAGING_FAULTS, 'ignore-range', undefined, undefined];
    const read = fc
      .tuple(
        fc.constantFrom(...paths),
        fc.double({ min: 0, max: 1, noNaN: true }),
        fc.integer({ min: 1, max: 400_000 }),
      )
      .map(([path, at, length]): [string, number, number] => {
        const size = files[path]!.length;
        return [path, Math.floor(at * size), length];
      });
    const outcomes = { exact: 0, EIO: 0 };
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.constantFrom(...kinds), { minLength: 1, maxLength: 12 }),
        fc.array(read, { minLength: 1, maxLength: 4 }),
        async (faults, reads) => {
          front.queue = [...faults];
          try {
            // Concurrent reads: faults land on whichever request comes next.
            const got = await Promise.all(reads.map(([p, o, l]) => readChecked(layer, p, o, l)));
            for (const g of got) outcomes[g]++;
          } finally {
            front.clear();
          }
          for (const [p, o, l] of reads) expect(await readChecked(layer, p, o, l)).toBe('exact');
        },
      ),
      { numRuns: 40 },
    );
    // Both outcomes happened, so the property tested something either way.
    expect(outcomes.EIO).toBeGreaterThan(0);
    expect(outcomes.exact).toBeGreaterThan(0);
  }, 120_000);

  it.skipIf(!canFuse)(
    'a FUSE mount answers EIO to another process while bytes are corrupt, then the right bytes',
    async () => {
      const mounted = await mountRemoteLayer({
        ztoc: built.ztoc,
        blob: client().repository(`${front.host}/${REPOSITORY}`).blobReader(descriptor),
        layer: { digest: descriptor.digest, size: descriptor.size },
        mountpoint: join(work, 'mnt'),
        background: false,
        retryDelayMs: 1,
      });
      try {
        const path = join(mounted.mountpoint, 'usr/lib/multi-span.bin');
        const whole = (): Promise<string[]> => readInChild([[path, 0, -1]]);
        for (const fault of ['corrupt', 'reset'] as const) {
          front.always = fault;
          try {
            expect(await whole(), fault).toEqual(['ERR EIO']);
          } finally {
            front.clear();
          }
        }
        expect(mounted.stats().verifyFailures).toBeGreaterThan(0);
        expect(await whole()).toEqual([sha256(files['usr/lib/multi-span.bin']!)]);
        const others = paths.map((p): [string, number, number] => [join(mounted.mountpoint, p), 0, -1]);
        expect(await readInChild(others)).toEqual(paths.map((p) => sha256(files[p]!)));
      } finally {
        await mounted.unmount();
      }
    },
  );
});
