import { parseArgs } from 'node:util';
import { startFuseKeeper } from '@soci-ts/lazy-fs';
import { pino } from 'pino';
import { parseDuration } from './config.js';

const USAGE = `usage: soci-fuse-keeper [--socket PATH] [--wait-for-daemon DURATION] [--exit-when-idle DURATION]

Owns the FUSE sessions of soci-snapshotter's lazy layers, so running containers keep their
files while the daemon restarts, crashes or is upgraded. Run it as its own service (see
docs/soci-fuse-keeper.service); stopping it ends every lazy mount.

  --socket PATH               unix socket daemons attach to (default /run/soci-ts/fuse-keeper.sock)
  --wait-for-daemon DURATION  how long a kernel request waits for a daemon before EIO (default 60s)
  --exit-when-idle DURATION   stop after this long without mounts and daemons (default: never)
  --help                      show this text
`;

/** The keeper process: returns the exit code (2 for usage errors, like the daemon). */
export async function main(argv: string[]): Promise<number> {
  let values: { socket?: string; 'wait-for-daemon'?: string; 'exit-when-idle'?: string; help?: boolean };
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        socket: { type: 'string' },
        'wait-for-daemon': { type: 'string' },
        'exit-when-idle': { type: 'string' },
        help: { type: 'boolean' },
      },
    }));
  } catch (err) {
    process.stderr.write(`soci-fuse-keeper: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  const durations: Record<string, number | undefined> = {};
  for (const flag of ['wait-for-daemon', 'exit-when-idle'] as const) {
    const text = values[flag];
    if (text === undefined) continue;
    durations[flag] = parseDuration(text);
    if (durations[flag] === undefined) {
      process.stderr.write(`soci-fuse-keeper: --${flag} must be a duration such as "30s" or "500ms"\n`);
      return 2;
    }
  }
  const logger = pino({ base: { service: 'soci-fuse-keeper' } }, pino.destination({ fd: 2, sync: true }));
  const keeper = await startFuseKeeper({
    socketPath: values.socket ?? '/run/soci-ts/fuse-keeper.sock',
    waitForDaemonMs: durations['wait-for-daemon'],
    idleExitMs: durations['exit-when-idle'],
    log: (level, msg, fields) => logger[level](fields ?? {}, msg),
  }).catch((err: Error) => {
    logger.error({ err }, 'the FUSE keeper cannot start');
    return undefined;
  });
  if (!keeper) return 1;
  logger.info({ socket: keeper.socketPath, pid: process.pid }, 'FUSE keeper ready');
  for (const signal of ['SIGTERM', 'SIGINT'] as const) {
    process.once(signal, () => {
      logger.info({ signal }, 'stopping');
      void keeper.close();
    });
  }
  const { leftOpen } = await keeper.stopped;
  if (leftOpen > 0) {
    // Each such connection still has a read blocked in the thread pool, and Node's exit joins
    // those threads: only SIGKILL ends the process (and, with it, those connections).
    logger.warn({ leftOpen }, 'connections of busy mounts were still open; the keeper ends with SIGKILL');
    process.kill(process.pid, 'SIGKILL');
  }
  return 0;
}
