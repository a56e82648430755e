import { status as GrpcStatus } from '@grpc/grpc-js';
import { SociError, type SociErrorOptions } from '@soci-ts/errors';

/**
 * Error classes of containerd's `errdefs` package, each with its gRPC status and class text.
 * containerd turns the gRPC status code of a proxy plugin's answer back into one of these
 * (errdefs.FromGRPC), and strips the class text from the end of the message, so messages follow
 * containerd's `<context>: <class text>` form. The text and the status are containerd's: do not
 * reword them.
 */
const CONTAINERD_CLASS = {
  SNAPSHOTTER_NOT_FOUND: { text: 'not found', grpc: GrpcStatus.NOT_FOUND },
  SNAPSHOTTER_ALREADY_EXISTS: { text: 'already exists', grpc: GrpcStatus.ALREADY_EXISTS },
  SNAPSHOTTER_FAILED_PRECONDITION: { text: 'failed precondition', grpc: GrpcStatus.FAILED_PRECONDITION },
  SNAPSHOTTER_INVALID_ARGUMENT: { text: 'invalid argument', grpc: GrpcStatus.INVALID_ARGUMENT },
  SNAPSHOTTER_UNAVAILABLE: { text: 'unavailable', grpc: GrpcStatus.UNAVAILABLE },
  SNAPSHOTTER_UNKNOWN: { text: 'unknown', grpc: GrpcStatus.UNKNOWN },
} as const satisfies Record<string, { text: string; grpc: GrpcStatus }>;

export type SnapshotErrorCode = keyof typeof CONTAINERD_CLASS;

/** Every SnapshotError code (tests check each one's gRPC status). */
export const SNAPSHOT_ERROR_CODES = Object.keys(CONTAINERD_CLASS) as SnapshotErrorCode[];

/**
 * A snapshot operation failed in a way containerd understands (mapped to a gRPC status).
 * The second argument is the context: the message is `<context>: <class text>`.
 */
export class SnapshotError extends SociError<SnapshotErrorCode> {
  override readonly name = 'SnapshotError';
  constructor(code: SnapshotErrorCode, context: string, options: SociErrorOptions = {}) {
    super(code, `${context}: ${CONTAINERD_CLASS[code].text}`, options);
  }

  get grpcCode(): GrpcStatus {
    return CONTAINERD_CLASS[this.code].grpc;
  }
}

export const notFound = (context: string) => new SnapshotError('SNAPSHOTTER_NOT_FOUND', context);
export const alreadyExists = (context: string) => new SnapshotError('SNAPSHOTTER_ALREADY_EXISTS', context);
export const failedPrecondition = (context: string) =>
  new SnapshotError('SNAPSHOTTER_FAILED_PRECONDITION', context);
export const invalidArgument = (context: string) =>
  new SnapshotError('SNAPSHOTTER_INVALID_ARGUMENT', context);

/** Whether `err` itself (not a cause) is a SnapshotError, of `code` when one is given. */
export function isSnapshotError(err: unknown, code?: SnapshotErrorCode): err is SnapshotError {
  return err instanceof SnapshotError && (code === undefined || err.code === code);
}

/**
 * gRPC status for any error: SnapshotErrors keep their class, anything else is UNKNOWN. Only the
 * error itself is looked at, not its causes: a wrapper's message does not end in the class text
 * that containerd strips, so containerd would misread it as that class.
 */
export function toGrpcError(err: unknown): { code: GrpcStatus; details: string } {
  if (err instanceof SnapshotError) return { code: err.grpcCode, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.UNKNOWN, details: message };
}
