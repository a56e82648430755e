// A FUSE keeper in its own process, as tests need it: `run-keeper.ts -- SOCKET [WAIT_MS]`.
// Its thread pool must be sized before Node starts (the spawner sets UV_THREADPOOL_SIZE).
import { startFuseKeeper } from '../src/index.js';

// vite-node passes the arguments after the file name as they are (no '--').
const [socketPath, waitMs] = process.argv.slice(2).filter((a) => a !== '--');
if (!socketPath?.endsWith('.sock'))
  throw new Error(`run-keeper: a socket path ending in .sock, not ${socketPath}`);
const keeper = await startFuseKeeper({
  socketPath: socketPath!,
  waitForDaemonMs: waitMs ? Number(waitMs) : undefined,
  log: (level, msg, fields) => process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`),
});
process.on('SIGTERM', () => void keeper.close());
process.stdout.write('ready\n');
// A connection the kernel kept open still has a read blocked in the thread pool: only SIGKILL ends us then.
const { leftOpen } = await keeper.stopped;
if (leftOpen > 0) process.kill(process.pid, 'SIGKILL');
process.exit(0);
