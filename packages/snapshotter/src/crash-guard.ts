// A bug in one request handler must not end the daemon: every FUSE mount it serves would die with
// it, and with them the running containers reading from them. Unhandled rejections and uncaught
// exceptions are logged (with a hint that it is a bug) and the process goes on; state that one
// request left half-done is that request's loss, not every container's.
import type { Logger } from 'pino';

interface ProcessEvents {
  on(event: 'unhandledRejection', listener: (reason: unknown) => void): unknown;
  on(event: 'uncaughtException', listener: (err: Error) => void): unknown;
}

/** Installs the handlers on `proc` (default: this process); returns how many it caught so far. */
export function installCrashGuard(logger: Logger, proc: ProcessEvents = process): () => number {
  let caught = 0;
  proc.on('unhandledRejection', (reason) => {
    caught++;
    logger.error(
      { err: reason },
      'unhandled promise rejection (a soci-ts bug: please report it); the daemon goes on',
    );
  });
  proc.on('uncaughtException', (err) => {
    caught++;
    logger.error({ err }, 'uncaught exception (a soci-ts bug: please report it); the daemon goes on');
  });
  return () => caught;
}
