// A FUSE keeper for bench/lazy-read in its own process: `node keeper.mjs SOCKET`. bench.mjs starts
// it with UV_THREADPOOL_SIZE=64 in its environment (each mount keeps one blocking /dev/fuse read in
// the thread pool, which is sized when the process starts) and stops it with SIGTERM. It also stops
// when its stdin closes, i.e. when the bench died without stopping it. Prints `ready` once it listens;
// logs JSON lines on stderr.
import { startFuseKeeper } from '@soci-ts/lazy-fs';

const socketPath = process.argv[2];
if (!socketPath?.endsWith('.sock'))
  throw new Error(`keeper.mjs: a socket path ending in .sock, not ${socketPath}`);
if (Number(process.env.UV_THREADPOOL_SIZE ?? 4) < 16) {
  throw new Error('keeper.mjs: start it with UV_THREADPOOL_SIZE=64 (one blocked thread per mount)');
}
const keeper = await startFuseKeeper({
  socketPath,
  log: (level, msg, fields) => process.stderr.write(`${JSON.stringify({ level, msg, ...fields })}\n`),
});
let stopping = false;
const stop = (why) => {
  if (stopping) return;
  stopping = true;
  keeper.close().then(
    () => {},
    (err) => {
      process.stderr.write(
        `${JSON.stringify({ level: 'error', msg: `close after ${why} failed`, err: String(err) })}\n`,
      );
      process.exit(1);
    },
  );
};
process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.stdin.on('end', () => stop('stdin closed'));
process.stdin.on('error', () => stop('stdin error'));
process.stdin.resume();
process.stdout.write('ready\n');
// A connection the kernel kept open still has a read blocked in the thread pool: only SIGKILL ends us then.
const { leftOpen } = await keeper.stopped;
if (leftOpen > 0) process.kill(process.pid, 'SIGKILL');
process.exit(0);
