import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import * as protoLoader from '@grpc/proto-loader';

const API = 'github.com/containerd/containerd/api';

/** Where the vendored .proto files live: `proto/` beside `src/` (tests) and beside `dist/` (published). */
export const CONTAINERD_PROTO_DIR = findProtoDir();

/** The vendored containerd 1.6 service definitions, relative to {@link CONTAINERD_PROTO_DIR}. */
export const CONTAINERD_PROTO_FILES = {
  content: `${API}/services/content/v1/content.proto`,
  images: `${API}/services/images/v1/images.proto`,
  leases: `${API}/services/leases/v1/leases.proto`,
  snapshots: `${API}/services/snapshots/v1/snapshots.proto`,
  diff: `${API}/services/diff/v1/diff.proto`,
  namespaces: `${API}/services/namespaces/v1/namespace.proto`,
  version: `${API}/services/version/v1/version.proto`,
} as const;

export type ContainerdService = keyof typeof CONTAINERD_PROTO_FILES;

/**
 * Loader options shared by client and server so both sides agree on the JS shape of messages:
 * camelCase field names, int64 as JS numbers (sizes and offsets stay far below 2^53), enums as
 * their names, unset scalars filled with defaults, bytes as Buffers.
 */
export const CONTAINERD_LOADER_OPTIONS: protoLoader.Options = {
  keepCase: false,
  longs: Number,
  enums: String,
  defaults: true,
  oneofs: true,
  includeDirs: [CONTAINERD_PROTO_DIR],
};

let cached: grpc.GrpcObject | undefined;

/**
 * Loads the vendored containerd protos once per process and returns the gRPC object tree
 * (`containerd.services.content.v1.Content`, ...), for clients and servers alike.
 */
export function loadContainerdProtos(): grpc.GrpcObject {
  cached ??= grpc.loadPackageDefinition(loadContainerdPackageDefinition());
  return cached;
}

/** The raw package definition, for callers that build their own gRPC objects (e.g. a server). */
export function loadContainerdPackageDefinition(
  services: readonly ContainerdService[] = Object.keys(CONTAINERD_PROTO_FILES) as ContainerdService[],
): protoLoader.PackageDefinition {
  return protoLoader.loadSync(
    services.map((s) => CONTAINERD_PROTO_FILES[s]),
    CONTAINERD_LOADER_OPTIONS,
  );
}

/** Looks up a service constructor such as `containerd.services.content.v1.Content`. */
export function serviceConstructor(fullName: string): grpc.ServiceClientConstructor {
  let node: unknown = loadContainerdProtos();
  for (const part of fullName.split('.')) node = (node as Record<string, unknown> | undefined)?.[part];
  if (typeof node !== 'function') throw new Error(`containerd proto service ${fullName} not found`);
  return node as grpc.ServiceClientConstructor;
}

function findProtoDir(): string {
  const here = dirname(fileURLToPath(import.meta.url));
  const candidates = [join(here, '..', 'proto'), join(here, '..', '..', 'proto')];
  const found = candidates.find((dir) => existsSync(join(dir, API)));
  if (!found)
    throw new Error(`containerd protos not found next to ${here}; looked in ${candidates.join(', ')}`);
  return found;
}
