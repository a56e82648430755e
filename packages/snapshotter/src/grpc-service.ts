import * as grpc from '@grpc/grpc-js';
import type { Logger } from 'pino';
import { toGrpcError } from './errors.js';
import type { SnapshotKind } from './metadata-store.js';
import type { SnapshotterMetrics } from './metrics.js';
import { loadSnapshotsProto } from './proto.js';
import type { SnapshotInfo, Snapshotter } from './snapshotter.js';

const KIND_NAME: Record<SnapshotKind, string> = { view: 'VIEW', active: 'ACTIVE', committed: 'COMMITTED' };
/** containerd's proxy sends List results in batches; this many infos per message. */
const LIST_BATCH = 100;

interface Timestamp {
  seconds: string;
  nanos: number;
}

const toTimestamp = (d: Date): Timestamp => {
  const ms = d.getTime();
  return { seconds: String(Math.floor(ms / 1000)), nanos: (ms % 1000) * 1e6 };
};

export const toProtoInfo = (i: SnapshotInfo) => ({
  name: i.name,
  parent: i.parent,
  kind: KIND_NAME[i.kind],
  created_at: toTimestamp(i.created),
  updated_at: toTimestamp(i.updated),
  labels: i.labels,
});

// biome-ignore lint/suspicious/noExplicitAny: request shapes come from the proto definition at run time
type Req = any;

/** Binds the Snapshots service to a gRPC server, recording each call's method and status code. */
export function addSnapshotsService(
  server: grpc.Server,
  sn: Snapshotter,
  logger: Logger,
  metrics?: SnapshotterMetrics,
  /** Told of every call, so that containerd's version is asked at first contact. */
  onCall?: () => void,
): void {
  const record = (method: string, started: bigint, code: grpc.status) => {
    const seconds = Number(process.hrtime.bigint() - started) / 1e9;
    metrics?.grpcRequests.inc({ method, code: grpc.status[code] ?? String(code) });
    metrics?.grpcDuration.observe({ method }, seconds);
    logger.trace({ method, code: grpc.status[code], ms: Math.round(seconds * 1000) }, 'snapshots call');
  };

  const unary =
    (method: string, fn: (req: Req) => Promise<unknown> | unknown): grpc.handleUnaryCall<Req, unknown> =>
    (call, callback) => {
      onCall?.();
      const started = process.hrtime.bigint();
      Promise.resolve()
        .then(() => fn(call.request))
        .then(
          (res) => {
            record(method, started, grpc.status.OK);
            callback(null, res);
          },
          (err: unknown) => {
            const { code, details } = toGrpcError(err);
            record(method, started, code);
            const level = code === grpc.status.UNKNOWN ? 'error' : 'debug';
            logger[level]({ method, code: grpc.status[code], err }, details);
            callback({ code, details });
          },
        );
    };

  const list: grpc.handleServerStreamingCall<Req, unknown> = (call) => {
    onCall?.();
    const started = process.hrtime.bigint();
    try {
      const infos = sn.list(call.request.filters ?? []);
      for (let i = 0; i < infos.length; i += LIST_BATCH) {
        call.write({ info: infos.slice(i, i + LIST_BATCH).map(toProtoInfo) });
      }
      record('List', started, grpc.status.OK);
      call.end();
    } catch (err) {
      const { code, details } = toGrpcError(err);
      record('List', started, code);
      call.emit('error', { code, details });
    }
  };

  const empty = {};
  server.addService(loadSnapshotsProto().service, {
    Prepare: unary('Prepare', async (r) => ({ mounts: await sn.prepare(r.key, r.parent, r.labels) })),
    View: unary('View', async (r) => ({ mounts: await sn.view(r.key, r.parent, r.labels) })),
    Mounts: unary('Mounts', async (r) => ({ mounts: await sn.mounts(r.key) })),
    Commit: unary('Commit', async (r) => {
      await sn.commit(r.name, r.key, r.labels);
      return empty;
    }),
    Remove: unary('Remove', async (r) => {
      await sn.remove(r.key);
      return empty;
    }),
    Stat: unary('Stat', (r) => ({ info: toProtoInfo(sn.stat(r.key)) })),
    Update: unary('Update', async (r) => {
      const info = r.info ?? { name: '', labels: {} };
      const updated = await sn.update(
        { name: info.name, labels: info.labels ?? {} },
        r.update_mask?.paths ?? [],
      );
      return { info: toProtoInfo(updated) };
    }),
    List: list,
    Usage: unary('Usage', async (r) => {
      const u = await sn.usage(r.key);
      return { size: String(u.size), inodes: String(u.inodes) };
    }),
    Cleanup: unary('Cleanup', async () => {
      await sn.cleanup();
      return empty;
    }),
  });
}
