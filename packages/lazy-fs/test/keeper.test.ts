// The FUSE keeper keeps mounts alive across daemon restarts: requests wait in the keeper while no
// daemon is attached (up to waitForDaemonMs, then EIO) and go to the next daemon that attaches,
// including the ones the old daemon read and never answered. Real mounts, a keeper in its own
// process, readers in python processes (the serving process must never read its own mount).
import { type ChildProcess, spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import { existsSync } from 'node:fs';
import { lstat, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { connect } from 'node:net';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { spawnTs, waitUntil } from '@soci-ts/testing/process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachRemoteLayer,
  type BlobRangeReader,
  forceUnmount,
  isMounted,
  KeeperFuseBackend,
  type KeptSessionInfo,
  LazyFsError,
  type MountedLayer,
  type MountRemoteLayerOptions,
  mountRemoteLayer,
  startFuseKeeper,
} from '../src/index.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FileBlobReader,
  readInChild,
  startKeeperProcess,
  tempDir,
  writeTree,
} from './helpers.js';

const canFuse = process.getuid?.() === 0 && existsSync('/dev/fuse');

const MiB = 1024 * 1024;
/** Part 1 at the start of big.bin, part 2 far beyond anything the kernel reads ahead of part 1. */
const PART1 = { offset: 0, length: 64 * 1024 };
const PART2 = { offset: 6 * MiB + 12_345, length: 300_000 };
/** Far from both (and at a page boundary, as O_DIRECT may want). */
const DIRECT = { offset: 3 * MiB, length: 128 * 1024 };
/** How long the shared keeper lets requests wait for a daemon (longer than any wait below). */
const SHARED_WAIT_MS = 15_000;
/** The keeper of the bound test. */
const SHORT_WAIT_MS = 1500;
/** What the keeper logs for each request it answered with EIO because no daemon came. */
const GAVE_UP = 'no daemon answered a FUSE request in time';

function sha256(bytes: Uint8Array): string {
  return createHash('sha256').update(bytes).digest('hex');
}

/**
 * A reader process that keeps files open between commands (one JSON array per stdin line):
 * ["open", name, path] or ["open-direct", name, path] (O_DIRECT: each read is one FUSE request,
 * no readahead, no page cache) and ["read", name, offset, length] (os.pread until length or EOF).
 * Prints one JSON line per command: {"out": "ok" | sha256 hex | "ERR <errno name>", "ms": n}.
 */
const READER_PY = `
import errno, hashlib, json, os, sys, time
fds = {}
for line in sys.stdin:
    cmd = json.loads(line)
    began = time.monotonic()
    try:
        if cmd[0] in ('open', 'open-direct'):
            direct = os.O_DIRECT if cmd[0] == 'open-direct' else 0
            fds[cmd[1]] = os.open(cmd[2], os.O_RDONLY | direct)
            out = 'ok'
        else:
            _, name, offset, length = cmd
            data = bytearray()
            while len(data) < length:
                chunk = os.pread(fds[name], length - len(data), offset + len(data))
                if not chunk:
                    break
                data += chunk
            out = hashlib.sha256(data).hexdigest()
    except OSError as e:
        out = 'ERR ' + errno.errorcode.get(e.errno, str(e.errno))
    print(json.dumps({'out': out, 'ms': round((time.monotonic() - began) * 1000)}), flush=True)
`;

interface Answer {
  out: string;
  ms: number;
}

class ReaderProcess {
  readonly child: ChildProcess;
  private readonly waiting: { ok: (a: Answer) => void; fail: (e: Error) => void }[] = [];
  private stderr = '';

  constructor() {
    this.child = spawn('python3', ['-u', '-c', READER_PY], { stdio: ['pipe', 'pipe', 'pipe'] });
    createInterface({ input: this.child.stdout! }).on('line', (line) => {
      this.waiting.shift()?.ok(JSON.parse(line) as Answer);
    });
    this.child.stderr!.on('data', (d: Buffer) => {
      this.stderr += d.toString();
    });
    this.child.stdin!.on('error', () => {});
    this.child.once('exit', (code, signal) => {
      for (const w of this.waiting.splice(0))
        w.fail(new Error(`the reader exited (${code ?? signal}): ${this.stderr.trim()}`));
    });
  }

  /** Sends a command; resolves with its answer (commands are answered in order). */
  send(cmd: [string, ...(string | number)[]]): Promise<Answer> {
    const answer = new Promise<Answer>((ok, fail) => this.waiting.push({ ok, fail }));
    this.child.stdin!.write(`${JSON.stringify(cmd)}\n`);
    return answer;
  }

  open(name: string, path: string, options: { direct?: boolean } = {}): Promise<Answer> {
    return this.send([options.direct ? 'open-direct' : 'open', name, path]);
  }

  read(name: string, offset: number, length: number): Promise<Answer> {
    return this.send(['read', name, offset, length]);
  }

  /** SIGKILL, and wait until it is gone (a reader holding files open keeps a FUSE connection). */
  async kill(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const exited = new Promise<void>((done) => this.child.once('exit', () => done()));
    this.child.kill('SIGKILL');
    await within(exited, 10_000, 'the reader to exit').catch(() => {});
  }
}

/** `promise`, or a rejection naming `what` after `ms`. */
function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  return Promise.race([
    promise.finally(() => clearTimeout(timer)),
    new Promise<never>((_, fail) => {
      timer = setTimeout(() => fail(new Error(`${what}: no answer within ${ms} ms`)), ms);
    }),
  ]);
}

/** Whether `promise` settles within `ms`. */
async function settlesWithin(promise: Promise<unknown>, ms: number): Promise<boolean> {
  let settled = false;
  promise.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  await new Promise((r) => setTimeout(r, ms));
  return settled;
}

/** A blob whose range requests reach it and are never answered (a registry that hangs). */
class HangingReader implements BlobRangeReader {
  calls = 0;
  constructor(readonly size: number) {}
  readRange(): Promise<Uint8Array> {
    this.calls++;
    return new Promise(() => {});
  }
}

/** Passes range requests on until `hang` is set; from then on they are never answered. */
class GatedReader implements BlobRangeReader {
  hang = false;
  hung = 0;
  constructor(readonly inner: FileBlobReader) {}
  get size(): number {
    return this.inner.size;
  }
  readRange(start: number, end: number): Promise<Uint8Array> {
    if (!this.hang) return this.inner.readRange(start, end);
    this.hung++;
    return new Promise(() => {});
  }
}

/** One request on its own connection to a keeper; resolves with its answer. */
function keeperRequest(path: string, request: object): Promise<unknown> {
  return new Promise((ok, fail) => {
    const socket = connect(path);
    let seen = '';
    socket.once('error', fail);
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString();
      const end = seen.indexOf('\n');
      if (end < 0) return;
      socket.destroy();
      ok(JSON.parse(seen.slice(0, end)));
    });
    socket.once('close', () => fail(new Error(`the keeper closed without an answer: ${seen}`)));
    socket.write(`${JSON.stringify(request)}\n`);
  });
}

type Keeper = Awaited<ReturnType<typeof startKeeperProcess>>;

/** Mount points at or below `dir`, from the mount table (no look at the mounts themselves). */
async function mountsUnder(dir: string): Promise<string[]> {
  const table = await readFile('/proc/self/mountinfo', 'utf8');
  return table
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((field): field is string => field !== undefined)
    .map((field) =>
      field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8))),
    )
    .filter((mnt) => mnt === dir || mnt.startsWith(`${dir}/`))
    .reverse();
}

describe.skipIf(!canFuse)('FUSE keeper: mounts outlive the daemon serving them', () => {
  let work: string;
  let layer: BuiltLayer;
  let big: Uint8Array;
  let other: Uint8Array;
  let socketPath: string;
  let keeper: Keeper | undefined;
  let backend: KeeperFuseBackend;
  const keepers = new Set<Keeper>();
  /** The layer serving each mountpoint now (replaced on attach). */
  const serving = new Map<string, MountedLayer>();
  const readers = new Set<ReaderProcess>();

  beforeAll(async () => {
    work = await tempDir('keeper');
    big = compressibleBytes(8 * MiB, 11);
    other = compressibleBytes(3 * MiB + 777, 23);
    await writeTree(join(work, 'tree'), { 'data/big.bin': big, 'data/other.bin': other });
    layer = await buildLayer(join(work, 'tree'), join(work, 'layer'), { spanSize: 256 * 1024 });
    socketPath = join(work, 'keeper.sock');
    keeper = await startKeeperProcess(socketPath, SHARED_WAIT_MS);
    keepers.add(keeper);
    backend = new KeeperFuseBackend({ socketPath });
  }, 120_000);

  afterAll(async () => {
    // Readers first: an open file keeps a FUSE connection after its unmount.
    await Promise.all([...readers].map((r) => r.kill()));
    for (const m of serving.values()) await m.unmount().catch(() => {});
    for (const k of keepers) await k.stop();
    if (!work) return;
    for (const mnt of await mountsUnder(work)) await forceUnmount(mnt);
    const left = await mountsUnder(work);
    // Never walk into a mount (it would be this process reading its own mount, or a dead one).
    if (left.length > 0) console.warn(`still mounted, ${work} is left in place: ${left.join(', ')}`);
    else await rm(work, { recursive: true, force: true });
  }, 60_000);

  function options(name: string, blob: BlobRangeReader, b: KeeperFuseBackend = backend) {
    return {
      ztoc: layer.ztoc,
      blob,
      layer: { digest: layer.digest, size: layer.size },
      mountpoint: join(work, 'mnt', name),
      background: false,
      backend: b,
    } satisfies MountRemoteLayerOptions;
  }

  function goodBlob() {
    return new FileBlobReader(layer.blobPath, layer.size);
  }

  async function mount(name: string, blob: BlobRangeReader, b?: KeeperFuseBackend): Promise<MountedLayer> {
    const m = await mountRemoteLayer(options(name, blob, b));
    serving.set(m.mountpoint, m);
    return m;
  }

  async function attach(name: string, blob: BlobRangeReader, b?: KeeperFuseBackend): Promise<MountedLayer> {
    const m = await attachRemoteLayer(options(name, blob, b));
    expect(m, `the keeper holds a session at ${name}`).toBeDefined();
    serving.set(m!.mountpoint, m!);
    return m!;
  }

  function reader(): ReaderProcess {
    const r = new ReaderProcess();
    readers.add(r);
    return r;
  }

  async function done(r: ReaderProcess): Promise<void> {
    await r.kill();
    readers.delete(r);
  }

  async function sessionAt(mountpoint: string, b = backend): Promise<KeptSessionInfo | undefined> {
    return (await b.sessions()).find((s) => s.mountpoint === mountpoint);
  }

  /** Waits until the keeper has seen the daemon go (it learns that from the socket's end). */
  async function untilDetached(mountpoint: string, b = backend): Promise<KeptSessionInfo> {
    await waitUntil('the keeper to see the daemon go', async () => {
      return (await sessionAt(mountpoint, b))?.attached === false;
    });
    return (await sessionAt(mountpoint, b))!;
  }

  const bigSlice = (p: { offset: number; length: number }) =>
    sha256(big.subarray(p.offset, p.offset + p.length));

  it('a new daemon takes a mount over: an open file reads on, a waiting read completes', async () => {
    const m = await mount('takeover', goodBlob());
    const path = join(m.mountpoint, 'data/big.bin');
    const r = reader();
    try {
      expect(await within(r.open('big', path), 10_000, 'open')).toMatchObject({ out: 'ok' });
      expect((await within(r.read('big', PART1.offset, PART1.length), 10_000, 'part 1')).out).toBe(
        bigSlice(PART1),
      );

      await m.detach();
      await untilDetached(m.mountpoint);
      const part2 = r.read('big', PART2.offset, PART2.length);
      // The read waits in the keeper: it neither fails nor completes while no daemon serves.
      await waitUntil('the read to wait in the keeper', async () => {
        return ((await sessionAt(m.mountpoint))?.pending ?? 0) > 0;
      });
      // Longer than the keeper's 1 s check: a keeper that gave up early would have answered by now
      // (the kernel retries a failed readahead page once, so one early EIO alone would not show).
      expect(await settlesWithin(part2, 2500), 'part 2 answered while no daemon was attached').toBe(false);

      const blob = goodBlob();
      const successor = await attach('takeover', blob);
      expect(successor.mountpoint).toBe(m.mountpoint);
      const answer = await within(part2, 10_000, 'part 2 after the takeover');
      expect(answer.out).toBe(bigSlice(PART2));
      expect(answer.ms).toBeGreaterThanOrEqual(2400);
      // The successor fetched those bytes: nothing of part 2 was in any cache.
      expect(blob.requests.length).toBeGreaterThan(0);
      await waitUntil('the keeper to have no request left', async () => {
        return (await sessionAt(m.mountpoint))?.pending === 0;
      });

      // A file nobody looked up or read before the takeover.
      const got = await within(
        readInChild([[join(m.mountpoint, 'data/other.bin'), 0, -1]]),
        10_000,
        'other.bin',
      );
      expect(got).toEqual([sha256(other)]);
      // And the old file on, with the same descriptor.
      expect((await within(r.read('big', 0, big.length), 10_000, 'all of big.bin')).out).toBe(sha256(big));
      expect(keeper!.stderr()).not.toContain(GAVE_UP);
    } finally {
      await done(r);
    }
  }, 30_000);

  it('replays the requests a daemon read and never answered to the next daemon', async () => {
    const hanging = new HangingReader(layer.size);
    const m = await mount('in-flight', hanging);
    const r = reader();
    try {
      expect(await within(r.open('big', join(m.mountpoint, 'data/big.bin')), 10_000, 'open')).toMatchObject({
        out: 'ok',
      });
      const read = r.read('big', PART2.offset, PART2.length);
      // The read reached the daemon (its blob was asked) and stays unanswered.
      await waitUntil('the read to reach the daemon', async () => hanging.calls > 0);
      expect(await settlesWithin(read, 500), 'a read of a hanging blob was answered').toBe(false);
      expect((await sessionAt(m.mountpoint))?.pending).toBeGreaterThan(0);

      await m.detach();
      expect((await untilDetached(m.mountpoint)).pending).toBeGreaterThan(0);
      expect(await settlesWithin(read, 2500), 'the read was answered without a daemon').toBe(false);

      const blob = goodBlob();
      await attach('in-flight', blob);
      expect((await within(read, 10_000, 'the replayed read')).out).toBe(bigSlice(PART2));
      expect(blob.requests.length).toBeGreaterThan(0);
      expect(await sessionAt(m.mountpoint)).toMatchObject({ attached: true });
      await waitUntil('the keeper to have no request left', async () => {
        return (await sessionAt(m.mountpoint))?.pending === 0;
      });
      expect(keeper!.stderr()).not.toContain(GAVE_UP);
    } finally {
      await done(r);
    }
  }, 30_000);

  it('answers EIO after waitForDaemonMs without a daemon, and serves again once one attaches', async () => {
    const shortSocket = join(work, 'short.sock');
    const short = await startKeeperProcess(shortSocket, SHORT_WAIT_MS);
    keepers.add(short);
    const shortBackend = new KeeperFuseBackend({ socketPath: shortSocket });
    const r = reader();
    const rd = reader();
    let m: MountedLayer | undefined;
    try {
      m = await mount('bounded', goodBlob(), shortBackend);
      const path = join(m.mountpoint, 'data/big.bin');
      expect(await within(r.open('big', path), 10_000, 'open')).toMatchObject({ out: 'ok' });
      expect(await within(rd.open('big', path, { direct: true }), 10_000, 'open')).toMatchObject({
        out: 'ok',
      });
      await m.detach();

      // An O_DIRECT read is one FUSE request: it gets EIO one wait after it was made. Not at once,
      // not much later (the keeper looks once a second).
      const direct = within(rd.read('big', DIRECT.offset, DIRECT.length), 10_000, 'a direct read');
      // A buffered read: the kernel asks once more for a page its readahead could not get, so two
      // waits of 1.5 to 2.5 s each (about 3.8 s seen).
      const began = Date.now();
      const buffered = await within(r.read('big', PART2.offset, PART2.length), 10_000, 'a buffered read');
      const elapsed = Date.now() - began;
      expect(buffered.out, short.stderr()).toBe('ERR EIO');
      expect(buffered.ms).toBeGreaterThanOrEqual(SHORT_WAIT_MS - 100);
      expect(elapsed).toBeLessThan(4 * SHORT_WAIT_MS + 2000);
      const once = await direct;
      expect(once.out, short.stderr()).toBe('ERR EIO');
      expect(once.ms).toBeGreaterThanOrEqual(SHORT_WAIT_MS - 20);
      expect(once.ms).toBeLessThan(SHORT_WAIT_MS + 1000 + 1000);
      expect(short.stderr()).toContain(GAVE_UP);

      await attach('bounded', goodBlob(), shortBackend);
      const again = await within(r.read('big', PART2.offset, PART2.length), 10_000, 'the read after attach');
      expect(again.out).toBe(bigSlice(PART2));
      expect(again.ms).toBeLessThan(SHORT_WAIT_MS);
      const directAgain = await within(rd.read('big', DIRECT.offset, DIRECT.length), 10_000, 'direct again');
      expect(directAgain.out).toBe(bigSlice(DIRECT));
      const fresh = await within(readInChild([[path, 0, -1]]), 10_000, 'a fresh reader');
      expect(fresh).toEqual([sha256(big)]);

      await done(r);
      await done(rd);
      await serving.get(m.mountpoint)!.unmount();
      serving.delete(m.mountpoint);
      expect(await isMounted(m.mountpoint)).toBe(false);
    } finally {
      await done(r);
      await done(rd);
      if (m && serving.has(m.mountpoint)) {
        await serving
          .get(m.mountpoint)!
          .unmount()
          .catch(() => {});
        serving.delete(m.mountpoint);
      }
      await short.stop();
      keepers.delete(short);
    }
  }, 30_000);

  it('an unmount while a process has a file open: its reads fail at once instead of waiting forever', async () => {
    // The keeper answers an unmount once the connection ended, which an open file delays (unless
    // fusectl can abort it); this daemon stops waiting for that answer after 3 s.
    const impatient = new KeeperFuseBackend({ socketPath, timeoutMs: 3000 });
    const blob = new GatedReader(goodBlob());
    const m = await mount('busy', blob, impatient);
    const path = join(m.mountpoint, 'data/big.bin');
    const r = reader();
    const r2 = reader();
    try {
      expect(await within(r.open('big', path), 10_000, 'open')).toMatchObject({ out: 'ok' });
      expect(await within(r2.open('big', path), 10_000, 'open')).toMatchObject({ out: 'ok' });
      expect((await within(r.read('big', PART1.offset, PART1.length), 10_000, 'part 1')).out).toBe(
        bigSlice(PART1),
      );
      // One read is with the daemon, unanswered, when the unmount comes.
      blob.hang = true;
      const blocked = r2.read('big', DIRECT.offset, DIRECT.length);
      await waitUntil('the read to reach the daemon', async () => blob.hung > 0);
      await m.unmount();
      serving.delete(m.mountpoint);
      expect(await isMounted(m.mountpoint)).toBe(false);
      expect(await sessionAt(m.mountpoint)).toBeUndefined();

      // No daemon serves the unmounted session and none can attach: the readers get an error
      // (ENOTCONN, or ECONNABORTED where fusectl aborted the connection) and can go.
      expect((await within(blocked, 5000, 'the read the daemon had')).out).toMatch(
        /^ERR E(NOTCONN|CONNABORTED)$/,
      );
      const after = await within(r.read('big', PART2.offset, PART2.length), 5000, 'a read after the unmount');
      expect(after.out).toMatch(/^ERR E(NOTCONN|CONNABORTED)$/);
      const began = Date.now();
      await done(r);
      await done(r2);
      expect(Date.now() - began, 'the readers could not exit').toBeLessThan(5000);
      // Its last file closed, the connection ends and the keeper lets go of it.
      await waitUntil('the keeper to close the connection', async () =>
        keeper!
          .stderr()
          .split('\n')
          .some(
            (line) => line.includes('"FUSE session ended"') && line.includes(JSON.stringify(m.mountpoint)),
          ),
      );
    } finally {
      await done(r);
      await done(r2);
    }
  }, 30_000);

  it('unmounting a session no daemon serves answers its waiting requests at once', async () => {
    const m = await mount('unmount-detached', goodBlob());
    const r = reader();
    try {
      expect(await within(r.open('big', join(m.mountpoint, 'data/big.bin')), 10_000, 'open')).toMatchObject({
        out: 'ok',
      });
      await m.detach();
      const waiting = r.read('big', PART2.offset, PART2.length);
      await waitUntil('the read to wait in the keeper', async () => {
        return ((await sessionAt(m.mountpoint))?.pending ?? 0) > 0;
      });
      // Asked by a process that never served it (the keeper answers once the connection ended).
      const answer = keeperRequest(socketPath, { op: 'unmount', mountpoint: m.mountpoint });
      expect((await within(waiting, 5000, 'the waiting read')).out).toMatch(/^ERR E(NOTCONN|CONNABORTED)$/);
      await done(r);
      expect(await within(answer, 10_000, 'the unmount')).toEqual({ ok: true });
      serving.delete(m.mountpoint);
      expect(await isMounted(m.mountpoint)).toBe(false);
      expect(await sessionAt(m.mountpoint)).toBeUndefined();
    } finally {
      await done(r);
    }
  }, 30_000);

  it('a daemon that goes away while its mount is made leaves a session the next daemon takes over', async () => {
    // A keeper with a short wait: the kernel's first request (INIT) must outlast it.
    const orphanSocket = join(work, 'orphan.sock');
    const short = await startKeeperProcess(orphanSocket, SHORT_WAIT_MS);
    keepers.add(short);
    const shortBackend = new KeeperFuseBackend({ socketPath: orphanSocket });
    const mountpoint = join(work, 'mnt', 'orphan');
    try {
      await mkdir(mountpoint, { recursive: true });
      const request = {
        op: 'mount',
        mountpoint,
        fsName: 'soci-ts-orphan',
        mountOptions: ['ro', 'nosuid', 'nodev', 'allow_other', 'default_permissions'],
      };
      const socket = connect(orphanSocket);
      await new Promise<void>((ok, fail) => socket.once('connect', ok).once('error', fail));
      socket.end(`${JSON.stringify(request)}\n`);
      socket.destroy();
      // The keeper mounts all the same, with nobody to answer INIT.
      await waitUntil('the orphaned session', async () => {
        const s = await sessionAt(mountpoint, shortBackend);
        return s !== undefined && s.pending > 0;
      });
      expect(await isMounted(mountpoint)).toBe(true);
      await untilDetached(mountpoint, shortBackend);
      // Past the wait: an INIT answered EIO would leave a mount no daemon can serve (ECONNREFUSED).
      await new Promise((r) => setTimeout(r, SHORT_WAIT_MS + 1500));
      expect(await sessionAt(mountpoint, shortBackend)).toMatchObject({ attached: false, pending: 1 });

      const m = await attach('orphan', goodBlob(), shortBackend);
      const got = await within(readInChild([[join(m.mountpoint, 'data/other.bin'), 0, -1]]), 10_000, 'read');
      expect(got).toEqual([sha256(other)]);
      expect(await sessionAt(mountpoint, shortBackend)).toMatchObject({ attached: true });
      await m.unmount();
      serving.delete(m.mountpoint);
      expect(await isMounted(mountpoint)).toBe(false);
    } finally {
      await serving
        .get(mountpoint)
        ?.unmount()
        .catch(() => {});
      serving.delete(mountpoint);
      await short.stop();
      keepers.delete(short);
    }
  }, 30_000);

  it('refuses at once to mount over a session the keeper holds, and leaves it alone', async () => {
    const m = await mount('kept', goodBlob());
    await m.detach();
    const began = Date.now();
    const err = await mountRemoteLayer(options('kept', goodBlob())).catch((e: unknown) => e);
    // Not after waiting for a daemon to answer a look at the mountpoint (15 s here).
    expect(Date.now() - began).toBeLessThan(5000);
    expect(err).toBeInstanceOf(LazyFsError);
    expect(err).toMatchObject({ code: 'LAZYFS_MOUNT_FAILED' });
    expect(await isMounted(m.mountpoint)).toBe(true);
    expect(await untilDetached(m.mountpoint)).toMatchObject({ attached: false });

    await attach('kept', goodBlob());
    const got = await within(readInChild([[join(m.mountpoint, 'data/big.bin'), 0, -1]]), 10_000, 'read');
    expect(got).toEqual([sha256(big)]);
  }, 30_000);

  it('after a keeper crash: its mounts answer ENOTCONN, a new keeper takes the socket, mounting again works', async () => {
    const crashSocket = join(work, 'crash.sock');
    const crashBackend = new KeeperFuseBackend({ socketPath: crashSocket });
    const first = await startKeeperProcess(crashSocket, SHARED_WAIT_MS);
    keepers.add(first);
    let second: Keeper | undefined;
    try {
      const m = await mount('crash', goodBlob(), crashBackend);
      const path = join(m.mountpoint, 'data/other.bin');
      expect(await within(readInChild([[path, 0, -1]]), 10_000, 'read')).toEqual([sha256(other)]);
      first.child.kill('SIGKILL');
      await first.stop();
      await m.detach();
      expect(await isMounted(m.mountpoint)).toBe(true);
      expect(await within(readInChild([[path, 0, -1]]), 10_000, 'read a dead mount')).toEqual([
        'ERR ENOTCONN',
      ]);
      expect((await lstat(crashSocket)).isSocket()).toBe(true);

      second = await startKeeperProcess(crashSocket, SHARED_WAIT_MS);
      keepers.add(second);
      const again = await mount('crash', goodBlob(), crashBackend);
      expect(await within(readInChild([[path, 0, -1]]), 10_000, 'read again')).toEqual([sha256(other)]);
      await again.unmount();
      serving.delete(again.mountpoint);
      expect(await isMounted(again.mountpoint)).toBe(false);
    } finally {
      for (const k of [first, second]) {
        if (!k) continue;
        await k.stop();
        keepers.delete(k);
      }
    }
  }, 30_000);

  it('refuses a second keeper on a live socket and never deletes a file that is not a socket', async () => {
    // In this process: the refusal comes before /dev/fuse is opened.
    const second = await startFuseKeeper({ socketPath }).then(
      async (k) => {
        await k.close();
        return k;
      },
      (err: unknown) => err,
    );
    expect(second).toBeInstanceOf(LazyFsError);
    expect(second).toMatchObject({ code: 'LAZYFS_KEEPER_REFUSED' });
    // As a process of its own: it exits without taking the socket.
    const run = spawnTs('test/run-keeper.ts', [socketPath], { killAfterMs: 20_000 });
    const ended = await run.done;
    expect(ended.code, ended.stdout).not.toBe(0);
    expect(ended.stdout).not.toContain('ready');
    expect(ended.stderr).toMatch(/KEEPER_REFUSED|another FUSE keeper answers/);
    // The first keeper still answers on its socket.
    expect((await lstat(socketPath)).isSocket()).toBe(true);
    expect(Array.isArray(await backend.sessions())).toBe(true);

    const notASocket = join(work, 'precious.sock');
    await writeFile(notASocket, 'a file that is not a socket\n');
    const refused = await startFuseKeeper({ socketPath: notASocket }).then(
      async (k) => {
        await k.close();
        return k;
      },
      (err: unknown) => err,
    );
    expect(refused).toBeInstanceOf(LazyFsError);
    expect(refused).toMatchObject({ code: 'LAZYFS_KEEPER_REFUSED' });
    expect((await lstat(notASocket)).isFile()).toBe(true);
    expect(await readFile(notASocket, 'utf8')).toBe('a file that is not a socket\n');
  }, 30_000);

  it('lists its sessions as attached or not, and forgets one that is unmounted', async () => {
    const m = await mount('listed', goodBlob());
    expect(await isMounted(m.mountpoint)).toBe(true);
    expect(await sessionAt(m.mountpoint)).toMatchObject({ mountpoint: m.mountpoint, attached: true });

    await m.detach();
    expect(await untilDetached(m.mountpoint)).toMatchObject({ attached: false });
    expect(await isMounted(m.mountpoint)).toBe(true);

    const successor = await attach('listed', goodBlob());
    expect(await sessionAt(m.mountpoint)).toMatchObject({ attached: true });
    expect(
      await within(readInChild([[join(m.mountpoint, 'data/other.bin'), 0, -1]]), 10_000, 'read'),
    ).toEqual([sha256(other)]);

    await successor.unmount();
    serving.delete(m.mountpoint);
    expect(await sessionAt(m.mountpoint)).toBeUndefined();
    expect(await isMounted(m.mountpoint)).toBe(false);
    // Nothing left to take over.
    const none = await attachRemoteLayer(options('listed', goodBlob()));
    if (none) serving.set(none.mountpoint, none);
    expect(none).toBeUndefined();
  }, 30_000);
});
