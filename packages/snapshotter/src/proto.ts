import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';
import { CONTAINERD_PROTO_DIR, CONTAINERD_PROTO_FILES } from '@soci-ts/containerd-client';

/**
 * One copy of containerd's vendored .proto files serves both sides: @soci-ts/containerd-client
 * owns them. The server loads them with its own options (original field names), so the wire
 * format is the same and the handlers see containerd's names.
 */
export const PROTO_DIR = CONTAINERD_PROTO_DIR;
const SNAPSHOTS_PROTO = CONTAINERD_PROTO_FILES.snapshots;

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
