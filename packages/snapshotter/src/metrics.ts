import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { SnapshotKind } from './metadata-store.js';
import type { RemoteOutcome } from './remote-snapshots.js';

/** The daemon's Prometheus metrics. Other modules add theirs to `registry`. */
export class SnapshotterMetrics {
  readonly registry = new Registry();
  readonly grpcRequests = new Counter({
    name: 'soci_snapshotter_grpc_requests_total',
    help: 'Snapshots gRPC calls handled, by method and gRPC status code name',
    labelNames: ['method', 'code'] as const,
    registers: [this.registry],
  });
  readonly grpcDuration = new Histogram({
    name: 'soci_snapshotter_grpc_request_duration_seconds',
    help: 'Time to handle a Snapshots gRPC call, by method',
    labelNames: ['method'] as const,
    buckets: [0.001, 0.005, 0.02, 0.1, 0.5, 2, 10, 60],
    registers: [this.registry],
  });
  readonly remoteOutcomes = new Counter({
    name: 'soci_snapshotter_remote_prepare_total',
    help: 'Prepares with a target offered to the remote layer source, by outcome (mounted, fallback, timeout, error)',
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly containerdInfo = new Gauge({
    name: 'soci_snapshotter_containerd_info',
    help: 'The containerd that calls this snapshotter (1 for its version; tested = whether soci-ts is tested with its release line)',
    labelNames: ['version', 'tested'] as const,
    registers: [this.registry],
  });

  constructor(countByKind: () => Record<SnapshotKind, number>) {
    new Gauge({
      name: 'soci_snapshotter_snapshots',
      help: 'Snapshots currently known, by kind',
      labelNames: ['kind'] as const,
      registers: [this.registry],
      collect() {
        for (const [kind, n] of Object.entries(countByKind())) this.set({ kind }, n);
      },
    });
    collectDefaultMetrics({ register: this.registry });
  }

  remoteOutcome(outcome: RemoteOutcome): void {
    this.remoteOutcomes.inc({ outcome });
  }
}

/** Splits "host:port" (IPv6 as "[::1]:port"). */
export function parseHostPort(address: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d+)$/.exec(address);
  if (!m) throw new Error(`"${address}" is not host:port`);
  return { host: m[1] ?? m[2]!, port: Number(m[3]) };
}

/** Serves GET /metrics on `address`; resolves with the bound address (port 0 picks a free one). */
export async function serveMetrics(
  registry: Registry,
  address: string,
): Promise<{ server: Server; address: string }> {
  const { host, port } = parseHostPort(address);
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url ?? '').split('?')[0] !== '/metrics') {
      res.writeHead(404).end('not found\n');
      return;
    }
    registry.metrics().then(
      (text) => res.writeHead(200, { 'content-type': registry.contentType }).end(text),
      (err: Error) => res.writeHead(500).end(`${err.message}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve());
  });
  const bound = server.address() as AddressInfo;
  const shown = bound.family === 'IPv6' ? `[${bound.address}]` : bound.address;
  return { server, address: `${shown}:${bound.port}` };
}
