import { status as GrpcStatus } from '@grpc/grpc-js';

/**
 * Error classes of containerd's `errdefs` package. containerd turns the gRPC status code of a
 * proxy plugin's answer back into one of these (errdefs.FromGRPC), and strips the class text
 * from the end of the message, so messages follow containerd's `<context>: <class text>` form.
 */
export type SnapshotErrorCode =
  | 'NOT_FOUND'
  | 'ALREADY_EXISTS'
  | 'FAILED_PRECONDITION'
  | 'INVALID_ARGUMENT'
  | 'UNAVAILABLE'
  | 'UNKNOWN';

const CLASS_TEXT: Record<SnapshotErrorCode, string> = {
  NOT_FOUND: 'not found',
  ALREADY_EXISTS: 'already exists',
  FAILED_PRECONDITION: 'failed precondition',
  INVALID_ARGUMENT: 'invalid argument',
  UNAVAILABLE: 'unavailable',
  UNKNOWN: 'unknown',
};

const GRPC_CODE: Record<SnapshotErrorCode, GrpcStatus> = {
  NOT_FOUND: GrpcStatus.NOT_FOUND,
  ALREADY_EXISTS: GrpcStatus.ALREADY_EXISTS,
  FAILED_PRECONDITION: GrpcStatus.FAILED_PRECONDITION,
  INVALID_ARGUMENT: GrpcStatus.INVALID_ARGUMENT,
  UNAVAILABLE: GrpcStatus.UNAVAILABLE,
  UNKNOWN: GrpcStatus.UNKNOWN,
};

/** A snapshot operation failed in a way containerd understands (mapped to a gRPC status). */
export class SnapshotError extends Error {
  override readonly name = 'SnapshotError';
  constructor(
    readonly code: SnapshotErrorCode,
    context: string,
    options?: { cause?: unknown },
  ) {
    super(`${context}: ${CLASS_TEXT[code]}`, options);
  }

  get grpcCode(): GrpcStatus {
    return GRPC_CODE[this.code];
  }
}

export const notFound = (context: string) => new SnapshotError('NOT_FOUND', context);
export const alreadyExists = (context: string) => new SnapshotError('ALREADY_EXISTS', context);
export const failedPrecondition = (context: string) => new SnapshotError('FAILED_PRECONDITION', context);
export const invalidArgument = (context: string) => new SnapshotError('INVALID_ARGUMENT', context);

export function isSnapshotError(err: unknown, code?: SnapshotErrorCode): err is SnapshotError {
  return err instanceof SnapshotError && (code === undefined || err.code === code);
}

/** gRPC status for any error: SnapshotErrors keep their class, anything else is UNKNOWN. */
export function toGrpcError(err: unknown): { code: GrpcStatus; details: string } {
  if (err instanceof SnapshotError) return { code: err.grpcCode, details: err.message };
  const message = err instanceof Error ? err.message : String(err);
  return { code: GrpcStatus.UNKNOWN, details: message };
}
