import * as grpc from '@grpc/grpc-js';
import { cancelledBy, fromGrpcError } from './errors.js';
import { serviceConstructor } from './protos.js';

/** gRPC metadata keys containerd reads on every call (namespaces/grpc.go, leases/grpc.go). */
export const NAMESPACE_HEADER = 'containerd-namespace';
export const LEASE_HEADER = 'containerd-lease';

const SERVICES = {
  content: 'containerd.services.content.v1.Content',
  images: 'containerd.services.images.v1.Images',
  leases: 'containerd.services.leases.v1.Leases',
  snapshots: 'containerd.services.snapshots.v1.Snapshots',
  diff: 'containerd.services.diff.v1.Diff',
  namespaces: 'containerd.services.namespaces.v1.Namespaces',
  version: 'containerd.services.version.v1.Version',
} as const;

export type ServiceName = keyof typeof SERVICES;

// Loosely typed gRPC stubs: each service module gives its calls precise types.
type Stub = grpc.Client & Record<string, (...args: unknown[]) => unknown>;
type Callback<Res> = (err: grpc.ServiceError | null, res: Res) => void;

/** `unix:///path` for a bare socket path; anything with a scheme or host:port is kept. */
export function grpcTarget(address: string): string {
  if (address.startsWith('/')) return `unix://${address}`;
  return address;
}

/**
 * One gRPC channel to containerd shared by all service stubs. Cheap to copy per namespace or lease:
 * the {@link CallScope} carries the headers, the Connection the sockets.
 */
export class Connection {
  private readonly stubs = new Map<ServiceName, Stub>();
  private channel: grpc.Channel | undefined;

  constructor(
    readonly address: string,
    private readonly channelOptions: grpc.ChannelOptions = {},
  ) {}

  stub(service: ServiceName): Stub {
    let stub = this.stubs.get(service);
    if (!stub) {
      const Ctor = serviceConstructor(SERVICES[service]);
      const options: grpc.ClientOptions = { ...this.defaultOptions(), ...this.channelOptions };
      if (this.channel) options.channelOverride = this.channel;
      stub = new Ctor(
        grpcTarget(this.address),
        grpc.credentials.createInsecure(),
        options,
      ) as unknown as Stub;
      this.channel ??= stub.getChannel() as grpc.Channel;
      this.stubs.set(service, stub);
    }
    return stub;
  }

  close(): void {
    for (const stub of this.stubs.values()) stub.close();
    this.stubs.clear();
    this.channel?.close();
    this.channel = undefined;
  }

  private defaultOptions(): grpc.ChannelOptions {
    // containerd answers up to 16 MiB per message (its default); manifests and configs fit easily.
    return {
      'grpc.max_receive_message_length': 16 * 1024 * 1024,
      'grpc.max_send_message_length': 16 * 1024 * 1024,
    };
  }
}

/** Namespace, optional lease and optional signal that every call of one client view carries. */
export interface CallScope {
  namespace: string;
  lease?: string | undefined;
  /** Cancels the view's calls in flight (`call.cancel()`) and fails them, and later ones, with CANCELLED. */
  signal?: AbortSignal | undefined;
}

/** The same scope without its signal: for clean-up that must run after an abort (abort an ingest). */
export function uncancellable(scope: CallScope): CallScope {
  return { namespace: scope.namespace, lease: scope.lease };
}

/**
 * Cancels `call` when `signal` aborts; `onAbort` then fails the caller's promise with CANCELLED and the
 * abort's reason as cause (grpc-js's own CANCELLED error would lose the reason). Returns the unlink.
 */
function cancelOnAbort(
  signal: AbortSignal | undefined,
  call: { cancel(): void },
  onAbort: () => void,
): () => void {
  if (!signal) return () => undefined;
  const abort = () => {
    onAbort();
    call.cancel();
  };
  signal.addEventListener('abort', abort, { once: true });
  return () => signal.removeEventListener('abort', abort);
}

export function scopeMetadata(scope: CallScope): grpc.Metadata {
  const md = new grpc.Metadata();
  md.set(NAMESPACE_HEADER, scope.namespace);
  if (scope.lease) md.set(LEASE_HEADER, scope.lease);
  return md;
}

/**
 * Calls a unary method; failures become ContainerdErrors named `<Service>.<Method>`. The scope's
 * signal cancels the call (containerd may still have done what it asked).
 */
export function unary<Req, Res>(
  conn: Connection,
  scope: CallScope,
  service: ServiceName,
  method: string,
  request: Req,
): Promise<Res> {
  const stub = conn.stub(service);
  const fn = stub[method];
  const name = `${service}.${method}`;
  if (typeof fn !== 'function') throw new Error(`no method ${method} on ${SERVICES[service]}`);
  if (scope.signal?.aborted) return Promise.reject(cancelledBy(name, scope.signal.reason));
  return new Promise<Res>((resolve, reject) => {
    let unlink: () => void = () => undefined;
    const call = fn.call(stub, request, scopeMetadata(scope), ((err, res) => {
      unlink();
      if (err) reject(fromGrpcError(name, err, conn.address));
      else resolve(res);
    }) as Callback<Res>) as grpc.ClientUnaryCall;
    unlink = cancelOnAbort(scope.signal, call, () => reject(cancelledBy(name, scope.signal?.reason)));
  });
}

/** Calls a server-streaming method and yields its messages. */
export async function* serverStream<Req, Res>(
  conn: Connection,
  scope: CallScope,
  service: ServiceName,
  method: string,
  request: Req,
): AsyncGenerator<Res> {
  const name = `${service}.${method}`;
  if (scope.signal?.aborted) throw cancelledBy(name, scope.signal.reason);
  const stub = conn.stub(service);
  const call = (stub[method] as (req: Req, md: grpc.Metadata) => grpc.ClientReadableStream<Res>).call(
    stub,
    request,
    scopeMetadata(scope),
  );
  // The stream then ends with grpc-js's CANCELLED; the abort's reason is put in its place below.
  const unlink = cancelOnAbort(scope.signal, call, () => undefined);
  try {
    for await (const message of call) yield message as Res;
  } catch (err) {
    throw scope.signal?.aborted
      ? cancelledBy(name, scope.signal.reason)
      : fromGrpcError(name, err, conn.address);
  } finally {
    unlink();
    call.cancel();
  }
}

/**
 * A bidirectional stream driven as request/response pairs: containerd's content Write answers every
 * message with exactly one response, so `send` resolves with the answer to that message.
 */
export class DuplexExchange<Req, Res> {
  private readonly call: grpc.ClientDuplexStream<Req, Res>;
  private readonly waiting: { resolve: (res: Res) => void; reject: (err: Error) => void }[] = [];
  private failure: Error | undefined;
  /** Rejects with the stream's failure (an abort included), for waits that are not a `send`. */
  readonly failed: Promise<never>;
  private rejectFailed: (err: Error) => void = () => undefined;
  private readonly name: string;
  private readonly unlinkSignal: () => void;

  constructor(conn: Connection, scope: CallScope, service: ServiceName, method: string) {
    const stub = conn.stub(service);
    this.name = `${service}.${method}`;
    this.failed = new Promise<never>((_resolve, reject) => {
      this.rejectFailed = reject;
    });
    this.failed.catch(() => undefined); // only a wait on it handles it
    this.call = (stub[method] as (md: grpc.Metadata) => grpc.ClientDuplexStream<Req, Res>).call(
      stub,
      scopeMetadata(scope),
    );
    const { signal } = scope;
    if (signal?.aborted) {
      this.fail(cancelledBy(this.name, signal.reason));
      this.call.cancel();
    }
    this.unlinkSignal = cancelOnAbort(signal, this.call, () =>
      this.fail(cancelledBy(this.name, signal?.reason)),
    );
    this.call.on('close', () => this.unlinkSignal());
    this.call.on('data', (res: Res) => this.waiting.shift()?.resolve(res));
    this.call.on('error', (err) => this.fail(fromGrpcError(this.name, err, conn.address)));
    this.call.on('end', () =>
      this.fail(fromGrpcError(this.name, new Error('stream ended before an answer'))),
    );
  }

  send(request: Req): Promise<Res> {
    if (this.failure) return Promise.reject(this.failure);
    return new Promise<Res>((resolve, reject) => {
      this.waiting.push({ resolve, reject });
      this.call.write(request);
    });
  }

  /** Half-closes the stream (the normal end after a commit). */
  end(): void {
    this.unlinkSignal();
    this.call.end();
  }

  /** Abandons the stream; containerd keeps the partial ingest until it is aborted or expires. */
  cancel(): void {
    this.unlinkSignal();
    this.call.cancel();
  }

  private fail(err: Error): void {
    this.failure ??= err;
    this.rejectFailed(this.failure);
    for (const w of this.waiting.splice(0)) w.reject(this.failure);
  }
}
