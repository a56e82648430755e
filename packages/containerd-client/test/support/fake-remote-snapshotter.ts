import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { LABEL, type Labels, loadContainerdPackageDefinition } from '../../src/index.js';

interface Entry {
  name: string;
  parent: string;
  kind: 'ACTIVE' | 'VIEW' | 'COMMITTED';
  labels: Labels;
  dir: string;
}

/** What the fake saw on each Prepare: the backend key and the labels containerd passed through. */
export interface PrepareCall {
  key: string;
  parent: string;
  labels: Labels;
}

/** A Prepare the fake never answers; `cancelled` resolves when the caller (through containerd) cancels it. */
export interface HeldPrepare {
  key: string;
  cancelled: Promise<void>;
}

/**
 * A proxy snapshotter for tests of the pull's remote path: a Prepare whose labels satisfy `isRemote`
 * is "mounted remotely" — committed at once under its target chain ID — and answered ALREADY_EXISTS,
 * like a remote snapshotter does. Any other Prepare gets an empty directory as a bind mount, so
 * containerd's Diff.Apply can fill it; one whose labels satisfy `hold` is never answered (a hung
 * snapshotter), and `nextHeld()` gives it. Not a real snapshotter: no overlay, no parents' content.
 */
export async function startFakeRemoteSnapshotter(
  isRemote: (labels: Labels) => boolean,
  hold: (labels: Labels) => boolean = () => false,
) {
  const heldWaiters: ((held: HeldPrepare) => void)[] = [];
  const dir = await mkdtemp(join(tmpdir(), 'soci-fake-sn-'));
  const socket = join(dir, 'snapshotter.sock');
  const entries = new Map<string, Entry>();
  const prepares: PrepareCall[] = [];
  let seq = 0;

  const fail = (code: grpc.status, details: string) => Object.assign(new Error(details), { code, details });
  const info = (e: Entry) => ({ name: e.name, parent: e.parent, kind: e.kind, labels: e.labels });
  const mounts = (e: Entry) => [
    { type: 'bind', source: e.dir, target: '', options: [e.kind === 'ACTIVE' ? 'rw' : 'ro', 'rbind'] },
  ];
  type Call<T> = grpc.ServerUnaryCall<T, unknown>;
  type Done = grpc.sendUnaryData<unknown>;

  const create = async (
    req: { key: string; parent: string; labels: Labels },
    kind: Entry['kind'],
    cb: Done,
  ) => {
    if (entries.has(req.key))
      return cb(fail(grpc.status.ALREADY_EXISTS, `snapshot ${req.key}: already exists`), null);
    const target = req.labels[LABEL.snapshotRef];
    if (kind === 'ACTIVE' && target && isRemote(req.labels)) {
      if (!entries.has(target)) {
        entries.set(target, {
          name: target,
          parent: req.parent,
          kind: 'COMMITTED',
          labels: { ...req.labels, 'containerd.io/snapshot/remote': 'remote snapshot' },
          dir: '',
        });
      }
      return cb(fail(grpc.status.ALREADY_EXISTS, `target snapshot "${target}": already exists`), null);
    }
    const entry: Entry = {
      name: req.key,
      parent: req.parent,
      kind,
      labels: req.labels,
      dir: join(dir, String(++seq)),
    };
    await mkdir(entry.dir);
    entries.set(req.key, entry);
    cb(null, { mounts: mounts(entry) });
  };
  const lookup = (key: string, cb: Done): Entry | undefined => {
    const e = entries.get(key);
    if (!e) cb(fail(grpc.status.NOT_FOUND, `snapshot ${key}: not found`), null);
    return e;
  };

  const server = new grpc.Server();
  const pkg = grpc.loadPackageDefinition(loadContainerdPackageDefinition(['snapshots'])) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: { service: grpc.ServiceDefinition } } } } };
  };
  server.addService(pkg.containerd.services.snapshots.v1.Snapshots.service, {
    Prepare: (call: Call<PrepareCall>, cb: Done) => {
      prepares.push({
        key: call.request.key,
        parent: call.request.parent,
        labels: { ...call.request.labels },
      });
      if (hold(call.request.labels)) {
        const cancelled = new Promise<void>((resolve) => call.on('cancelled', () => resolve()));
        heldWaiters.shift()?.({ key: call.request.key, cancelled });
        return;
      }
      void create(call.request, 'ACTIVE', cb);
    },
    View: (call: Call<PrepareCall>, cb: Done) => void create(call.request, 'VIEW', cb),
    Mounts: (call: Call<{ key: string }>, cb: Done) => {
      const e = lookup(call.request.key, cb);
      if (e) cb(null, { mounts: mounts(e) });
    },
    Commit: (call: Call<{ name: string; key: string; labels: Labels }>, cb: Done) => {
      const e = lookup(call.request.key, cb);
      if (!e) return;
      if (entries.has(call.request.name))
        return cb(fail(grpc.status.ALREADY_EXISTS, `${call.request.name}: already exists`), null);
      entries.delete(e.name);
      entries.set(call.request.name, {
        ...e,
        name: call.request.name,
        kind: 'COMMITTED',
        labels: { ...e.labels, ...call.request.labels },
      });
      cb(null, {});
    },
    Remove: (call: Call<{ key: string }>, cb: Done) => {
      if (lookup(call.request.key, cb)) {
        entries.delete(call.request.key);
        cb(null, {});
      }
    },
    Stat: (call: Call<{ key: string }>, cb: Done) => {
      const e = lookup(call.request.key, cb);
      if (e) cb(null, { info: info(e) });
    },
    Update: (call: Call<{ info: { name: string; labels: Labels } }>, cb: Done) => {
      const e = lookup(call.request.info.name, cb);
      if (!e) return;
      e.labels = { ...e.labels, ...call.request.info.labels };
      cb(null, { info: info(e) });
    },
    List: (call: grpc.ServerWritableStream<unknown, unknown>) => {
      call.write({ info: [...entries.values()].map(info) });
      call.end();
    },
    Usage: (_call: Call<unknown>, cb: Done) => cb(null, { size: 0, inodes: 0 }),
    Cleanup: (_call: Call<unknown>, cb: Done) => cb(null, {}),
  });
  await new Promise<void>((resolve, reject) =>
    server.bindAsync(`unix://${socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    ),
  );
  return {
    socket,
    prepares,
    entries,
    /** The next Prepare held from now on. */
    nextHeld: () => new Promise<HeldPrepare>((resolve) => heldWaiters.push(resolve)),
    async stop() {
      server.forceShutdown(); // a held Prepare never ends by itself
      await rm(dir, { recursive: true, force: true });
    },
  };
}
