import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';

/**
 * Classes of containerd errors (its `errdefs` package), as they arrive over gRPC. Callers branch
 * on `code`, never on the message.
 */
export type ContainerdErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'INVALID_ARGUMENT'
  | 'FAILED_PRECONDITION'
  | 'OUT_OF_RANGE'
  | 'UNAVAILABLE'
  | 'UNIMPLEMENTED'
  | 'CANCELLED'
  | 'DEADLINE_EXCEEDED'
  | 'PERMISSION_DENIED'
  | 'DATA_LOSS'
  | 'UNKNOWN';

const BY_GRPC_STATUS: Partial<Record<GrpcStatus, ContainerdErrorCode>> = {
  [GrpcStatus.NOT_FOUND]: 'NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'ALREADY_EXISTS',
  [GrpcStatus.INVALID_ARGUMENT]: 'INVALID_ARGUMENT',
  [GrpcStatus.FAILED_PRECONDITION]: 'FAILED_PRECONDITION',
  [GrpcStatus.OUT_OF_RANGE]: 'OUT_OF_RANGE',
  [GrpcStatus.UNAVAILABLE]: 'UNAVAILABLE',
  [GrpcStatus.UNIMPLEMENTED]: 'UNIMPLEMENTED',
  [GrpcStatus.CANCELLED]: 'CANCELLED',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'DEADLINE_EXCEEDED',
  [GrpcStatus.PERMISSION_DENIED]: 'PERMISSION_DENIED',
  [GrpcStatus.DATA_LOSS]: 'DATA_LOSS',
};

/**
 * A containerd API call failed; `code` is the containerd error class, `method` the gRPC method.
 * `unreachable`: set when containerd could not be reached at all (the address tried); the
 * message then says so plainly instead of quoting gRPC.
 */
export class ContainerdError extends Error {
  override readonly name = 'ContainerdError';
  readonly unreachable: string | undefined;
  constructor(
    readonly code: ContainerdErrorCode,
    readonly method: string,
    message: string,
    options?: { cause?: unknown; unreachable?: string },
  ) {
    super(options?.unreachable ? message : `containerd ${method}: ${message}`, options);
    this.unreachable = options?.unreachable;
  }
}

/** What a failed connect(2) to the socket means for the user. */
const CONNECT_FAILURES: Record<string, string> = {
  ENOENT: 'no socket at that path',
  ECONNREFUSED: 'nothing is listening there',
  EACCES: 'permission denied: run as root or as a member of the socket group',
  EPERM: 'permission denied: run as root or as a member of the socket group',
  ENOTSOCK: 'that path is not a socket',
};

/**
 * Turns a gRPC failure of `method` into a ContainerdError (other errors pass through wrapped as
 * UNKNOWN). `address`: the socket the call went to, named when it could not be reached.
 */
export function fromGrpcError(method: string, err: unknown, address?: string): ContainerdError {
  if (err instanceof ContainerdError) return err;
  const grpcErr = err as Partial<ServiceError>;
  const code = (typeof grpcErr.code === 'number' && BY_GRPC_STATUS[grpcErr.code as GrpcStatus]) || 'UNKNOWN';
  let message = grpcErr.details || (err instanceof Error ? err.message : String(err));
  // grpc-js reports a failed connect as UNAVAILABLE "No connection established. Last error: ...
  // connect ENOENT /path". A user needs the address and what went wrong, not the gRPC text.
  const connect = code === 'UNAVAILABLE' ? /\bconnect (E[A-Z]+)\b/.exec(message) : null;
  if (connect && address) {
    const why = CONNECT_FAILURES[connect[1]!] ?? connect[1]!;
    return new ContainerdError(
      code,
      method,
      `cannot reach containerd at ${address} (${why}); is containerd running, and is that its socket?`,
      { cause: err, unreachable: address },
    );
  }
  // UNAVAILABLE is also containerd's answer for a locked ingest ref; only a connection failure gets the hint.
  if (code === 'UNAVAILABLE' && !/\blocked\b/.test(message)) {
    message += ' (is containerd running and is the socket address right?)';
  }
  return new ContainerdError(code, method, message, { cause: err });
}

export function isContainerdError(err: unknown, code?: ContainerdErrorCode): err is ContainerdError {
  return err instanceof ContainerdError && (code === undefined || err.code === code);
}

export const isNotFound = (err: unknown): boolean => isContainerdError(err, 'NOT_FOUND');
export const isAlreadyExists = (err: unknown): boolean => isContainerdError(err, 'ALREADY_EXISTS');

/** Why a pull failed. Each code names what to fix; `cause` keeps the underlying error. */
export type PullErrorCode =
  | 'INVALID_REFERENCE'
  | 'IMAGE_NOT_FOUND'
  | 'REGISTRY_UNREACHABLE'
  | 'REGISTRY_AUTH'
  | 'REGISTRY_ERROR'
  | 'PLATFORM_NOT_FOUND'
  | 'UNSUPPORTED_MEDIA_TYPE'
  | 'INVALID_MANIFEST'
  | 'INVALID_CONFIG'
  | 'DIGEST_MISMATCH'
  | 'UNPACK_DISABLED'
  | 'UNPACK_FAILED'
  | 'CONTAINERD_ERROR'
  | 'ABORTED';

export class PullError extends Error {
  override readonly name = 'PullError';
  constructor(
    readonly code: PullErrorCode,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}
