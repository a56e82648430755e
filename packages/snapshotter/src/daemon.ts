import { mkdir, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { type Logger, pino } from 'pino';
import type { Registry } from 'prom-client';
import type { SnapshotterConfig } from './config.js';
import { ContainerdContact } from './containerd-contact.js';
import { addSnapshotsService } from './grpc-service.js';
import { SnapshotterMetrics, serveMetrics } from './metrics.js';
import type { RemoteLayerSource } from './remote.js';
import { Snapshotter } from './snapshotter.js';

/** What a remote layer source gets to build itself with. */
export interface RemoteSourceContext {
  config: SnapshotterConfig;
  logger: Logger;
  /** Add the source's own metrics here; they are served on /metrics. */
  registry: Registry;
}

export interface StartOptions {
  /** A remote layer source, or a factory for one; default: none (plain overlay snapshotter). */
  remote?: RemoteLayerSource | ((ctx: RemoteSourceContext) => RemoteLayerSource | Promise<RemoteLayerSource>);
  /** Logger to use; default: JSON lines on stderr at config.logLevel. */
  logger?: Logger;
}

export interface RunningSnapshotter {
  readonly config: SnapshotterConfig;
  readonly snapshotter: Snapshotter;
  readonly logger: Logger;
  readonly registry: Registry;
  /** The unix socket path gRPC listens on. */
  readonly socket: string;
  /** host:port /metrics is served on, or undefined when disabled. */
  readonly metricsAddress: string | undefined;
  /** Stops gRPC, unmounts remote layers, removes the socket. Safe to call twice. */
  close(): Promise<void>;
}

/** Logs as JSON lines on stderr (stdout stays free for --print-config and the like). */
export function createLogger(level: SnapshotterConfig['logLevel']): Logger {
  return pino({ level, base: { service: 'soci-snapshotter' } }, pino.destination({ fd: 2, sync: true }));
}

/** Starts the daemon: metadata and snapshots under config.root, gRPC on config.socket, /metrics. */
export async function startSnapshotter(
  config: SnapshotterConfig,
  options: StartOptions = {},
): Promise<RunningSnapshotter> {
  const logger = options.logger ?? createLogger(config.logLevel);
  let sn: Snapshotter | undefined;
  const metrics = new SnapshotterMetrics(() => sn?.countByKind() ?? { active: 0, view: 0, committed: 0 });
  const remote =
    typeof options.remote === 'function'
      ? await options.remote({ config, logger, registry: metrics.registry })
      : options.remote;
  sn = await Snapshotter.open({
    root: config.root,
    remote,
    mountTimeoutMs: config.mountTimeoutMs,
    logger,
    onRemoteOutcome: (o) => metrics.remoteOutcome(o),
  });
  const snapshotter = sn;

  const contact = new ContainerdContact({
    address: config.containerdAddress,
    logger,
    onVersion: (v) => metrics.containerdInfo.set({ version: v.version, tested: String(v.tested) }, 1),
  });
  const server = new grpc.Server();
  addSnapshotsService(server, snapshotter, logger, metrics, () => contact.first());
  await mkdir(dirname(config.socket), { recursive: true, mode: 0o711 });
  // A socket file left by a daemon that was killed would make bind fail.
  await rm(config.socket, { force: true });
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${config.socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    );
  });

  let http: { server: HttpServer; address: string } | undefined;
  if (config.metricsAddress !== '') {
    try {
      http = await serveMetrics(metrics.registry, config.metricsAddress);
    } catch (err) {
      await new Promise<void>((r) => server.tryShutdown(() => r()));
      await snapshotter.close();
      throw err;
    }
  }
  logger.info(
    { socket: config.socket, root: config.root, metrics: http?.address },
    'soci-snapshotter started',
  );

  let closed: Promise<void> | undefined;
  const close = () => {
    closed ??= (async () => {
      await new Promise<void>((resolve) => {
        const force = setTimeout(() => server.forceShutdown(), 5_000);
        server.tryShutdown(() => {
          clearTimeout(force);
          resolve();
        });
      });
      if (http) await new Promise<void>((resolve) => http!.server.close(() => resolve()));
      await snapshotter.close();
      await rm(config.socket, { force: true });
      logger.info('soci-snapshotter stopped');
    })();
    return closed;
  };

  return {
    config,
    snapshotter,
    logger,
    registry: metrics.registry,
    socket: config.socket,
    metricsAddress: http?.address,
    close,
  };
}
