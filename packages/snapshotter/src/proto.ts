import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

/**
 * The vendored .proto files live in <package>/proto. Both src/*.ts and the bundled dist/*.js
 * sit one level below the package root, so the same relative URL works from either.
 */
export const PROTO_DIR = fileURLToPath(new URL('../proto/', import.meta.url));
const SNAPSHOTS_PROTO = 'github.com/containerd/containerd/api/services/snapshots/v1/snapshots.proto';

export interface SnapshotsProto {
  service: grpc.ServiceDefinition;
  client: grpc.ServiceClientConstructor;
}

let cached: SnapshotsProto | undefined;

/** Loads containerd.services.snapshots.v1.Snapshots (enums as names, int64 as strings, defaults filled in). */
export function loadSnapshotsProto(): SnapshotsProto {
  if (cached) return cached;
  const definition = protoLoader.loadSync(SNAPSHOTS_PROTO, {
    includeDirs: [PROTO_DIR],
    keepCase: true,
    longs: String,
    enums: String,
    defaults: true,
    oneofs: true,
  });
  const pkg = grpc.loadPackageDefinition(definition) as unknown as {
    containerd: { services: { snapshots: { v1: { Snapshots: grpc.ServiceClientConstructor } } } };
  };
  const client = pkg.containerd.services.snapshots.v1.Snapshots;
  cached = { service: client.service, client };
  return cached;
}
