import { chmod, mkdir, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { dirname } from 'node:path';
import * as grpc from '@grpc/grpc-js';
import { SociError } from '@soci-ts/errors';
import { removeStaleSocket, socketPathState } from '@soci-ts/lazy-fs';
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
  /** The daemon's Prometheus registry: add the source's own metrics here; /metrics serves them. */
  metrics: Registry;
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
  /** The Prometheus registry /metrics serves. */
  readonly metrics: Registry;
  /** The unix socket path gRPC listens on. */
  readonly socket: string;
  /** host:port /metrics is served on, or undefined when disabled. */
  readonly metricsAddress: string | undefined;
  /** Stops gRPC, unmounts remote layers, removes the socket. Safe to call twice. */
  close(): Promise<void>;
}

/** The daemon cannot start as configured; `code` says why, the message what to do. */
export class DaemonStartError extends SociError<'SNAPSHOTTER_SOCKET_IN_USE'> {
  override readonly name = 'DaemonStartError';
}

/**
 * Removes a socket file left by a daemon that died (nobody accepts on it), so bind succeeds; a
 * socket a live process still serves is refused: taking it over would cut that daemon off from
 * containerd while its mounts stay up.
 */
export async function claimSocket(path: string): Promise<void> {
  const state = await socketPathState(path);
  if (state === 'live') {
    throw new DaemonStartError(
      'SNAPSHOTTER_SOCKET_IN_USE',
      `another process serves ${path} (a soci-snapshotter still running?); stop it first, or give this one another socket`,
    );
  }
  if (state === 'not-a-socket') {
    throw new DaemonStartError(
      'SNAPSHOTTER_SOCKET_IN_USE',
      `${path} exists and is not a socket; fix \`socket\` in the config`,
    );
  }
  await removeStaleSocket(path);
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
  // First of all: a live daemon on this socket owns the snapshots and mounts under root too.
  await mkdir(dirname(config.socket), { recursive: true, mode: 0o711 });
  await claimSocket(config.socket);
  let sn: Snapshotter | undefined;
  const metrics = new SnapshotterMetrics(() => sn?.countByKind() ?? { active: 0, view: 0, committed: 0 });
  const remote =
    typeof options.remote === 'function'
      ? await options.remote({ config, logger, metrics: metrics.registry })
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
  await new Promise<void>((resolve, reject) => {
    server.bindAsync(`unix://${config.socket}`, grpc.ServerCredentials.createInsecure(), (err) =>
      err ? reject(err) : resolve(),
    );
  });
  // containerd runs as root; nobody else may ask for mounts (group access for a socket-owning group).
  await chmod(config.socket, 0o660);

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
    metrics: metrics.registry,
    socket: config.socket,
    metricsAddress: http?.address,
    close,
  };
}
