import { status as GrpcStatus, type ServiceError } from '@grpc/grpc-js';
import { SociError, type SociErrorOptions } from '@soci-ts/errors';

/**
 * Classes of containerd errors (its `errdefs` package), as they arrive over gRPC. Callers branch
 * on `code`, never on the message.
 */
export type ContainerdErrorCode =
  | 'CONTAINERD_NOT_FOUND'
  | 'CONTAINERD_ALREADY_EXISTS'
  | 'CONTAINERD_INVALID_ARGUMENT'
  | 'CONTAINERD_FAILED_PRECONDITION'
  | 'CONTAINERD_OUT_OF_RANGE'
  | 'CONTAINERD_UNAVAILABLE'
  | 'CONTAINERD_UNIMPLEMENTED'
  | 'CONTAINERD_CANCELLED'
  | 'CONTAINERD_DEADLINE_EXCEEDED'
  | 'CONTAINERD_PERMISSION_DENIED'
  | 'CONTAINERD_DATA_LOSS'
  | 'CONTAINERD_UNKNOWN';

const BY_GRPC_STATUS: Partial<Record<GrpcStatus, ContainerdErrorCode>> = {
  [GrpcStatus.NOT_FOUND]: 'CONTAINERD_NOT_FOUND',
  [GrpcStatus.ALREADY_EXISTS]: 'CONTAINERD_ALREADY_EXISTS',
  [GrpcStatus.INVALID_ARGUMENT]: 'CONTAINERD_INVALID_ARGUMENT',
  [GrpcStatus.FAILED_PRECONDITION]: 'CONTAINERD_FAILED_PRECONDITION',
  [GrpcStatus.OUT_OF_RANGE]: 'CONTAINERD_OUT_OF_RANGE',
  [GrpcStatus.UNAVAILABLE]: 'CONTAINERD_UNAVAILABLE',
  [GrpcStatus.UNIMPLEMENTED]: 'CONTAINERD_UNIMPLEMENTED',
  [GrpcStatus.CANCELLED]: 'CONTAINERD_CANCELLED',
  [GrpcStatus.DEADLINE_EXCEEDED]: 'CONTAINERD_DEADLINE_EXCEEDED',
  [GrpcStatus.PERMISSION_DENIED]: 'CONTAINERD_PERMISSION_DENIED',
  [GrpcStatus.DATA_LOSS]: 'CONTAINERD_DATA_LOSS',
};

/** What a ContainerdError tells besides its code and message. */
export interface ContainerdErrorOptions extends SociErrorOptions {
  /** The gRPC method that failed, `<service>.<Method>` (e.g. `snapshots.Prepare`). */
  method?: string;
  /** The address tried, when containerd could not be reached at all. */
  unreachable?: string;
}

/**
 * A containerd API call failed; `code` is the containerd error class, `method` the gRPC method
 * (the message starts with `containerd <method>: `). `unreachable`: set when containerd could not be
 * reached at all (the address tried); the message then says so plainly instead of quoting gRPC.
 */
export class ContainerdError extends SociError<ContainerdErrorCode> {
  override readonly name: string = 'ContainerdError';
  /** `<service>.<Method>`; '' for a failure that is no call's. */
  readonly method: string;
  readonly unreachable: string | undefined;

  constructor(code: ContainerdErrorCode, message: string, options: ContainerdErrorOptions = {}) {
    const named = options.method && !options.unreachable;
    super(code, named ? `containerd ${options.method}: ${message}` : message, options);
    this.method = options.method ?? '';
    this.unreachable = options.unreachable;
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
  const code =
    (typeof grpcErr.code === 'number' && BY_GRPC_STATUS[grpcErr.code as GrpcStatus]) || 'CONTAINERD_UNKNOWN';
  let message = grpcErr.details || (err instanceof Error ? err.message : String(err));
  // grpc-js reports a failed connect as UNAVAILABLE "No connection established. Last error: ...
  // connect ENOENT /path". A user needs the address and what went wrong, not the gRPC text.
  const connect = code === 'CONTAINERD_UNAVAILABLE' ? /\bconnect (E[A-Z]+)\b/.exec(message) : null;
  if (connect && address) {
    const why = CONNECT_FAILURES[connect[1]!] ?? connect[1]!;
    return new ContainerdError(
      code,
      `cannot reach containerd at ${address} (${why}); is containerd running, and is that its socket?`,
      { method, cause: err, unreachable: address },
    );
  }
  // UNAVAILABLE is also containerd's answer for a locked ingest ref; only a connection failure gets the hint.
  if (code === 'CONTAINERD_UNAVAILABLE' && !/\blocked\b/.test(message)) {
    message += ' (is containerd running and is the socket address right?)';
  }
  return new ContainerdError(code, message, { method, cause: err });
}

/** The error a call ends with when its signal aborts: CANCELLED, with the abort's reason as cause. */
export function cancelledBy(method: string, reason: unknown): ContainerdError {
  return new ContainerdError('CONTAINERD_CANCELLED', 'cancelled by the caller', { method, cause: reason });
}

/**
 * Whether `err` itself (not an error under it) is a ContainerdError, with one of `codes` when given.
 * For a whole cause chain (a PullError around it), use `findCode` of `@soci-ts/errors`.
 */
export function isContainerdError(err: unknown, ...codes: ContainerdErrorCode[]): err is ContainerdError {
  return err instanceof ContainerdError && (codes.length === 0 || codes.includes(err.code));
}

/** containerd answered NOT_FOUND (the error itself, as a call throws it). */
export const isNotFound = (err: unknown): boolean => isContainerdError(err, 'CONTAINERD_NOT_FOUND');
/** containerd answered ALREADY_EXISTS (the error itself, as a call throws it). */
export const isAlreadyExists = (err: unknown): boolean => isContainerdError(err, 'CONTAINERD_ALREADY_EXISTS');

/**
 * Why a pull failed. The pull's own decisions have their own code; a registry's or containerd's
 * failure during a step is PULL_REGISTRY_FAILED or PULL_CONTAINERD_FAILED, with that failure as
 * `cause` (find its code with `findCode`).
 */
export type PullErrorCode =
  | 'PULL_INVALID_REFERENCE'
  | 'PULL_PLATFORM_NOT_FOUND'
  | 'PULL_UNSUPPORTED_MEDIA_TYPE'
  | 'PULL_INVALID_MANIFEST'
  | 'PULL_INVALID_CONFIG'
  | 'PULL_UNPACK_DISABLED'
  | 'PULL_UNPACK_FAILED'
  | 'PULL_REGISTRY_FAILED'
  | 'PULL_CONTAINERD_FAILED'
  | 'PULL_ABORTED';

/** A pull's failure: `new PullError(code, message, { cause })`, no details beyond the cause. */
export class PullError extends SociError<PullErrorCode> {
  override readonly name: string = 'PullError';
}
