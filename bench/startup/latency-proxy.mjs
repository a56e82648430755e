// A TCP proxy that adds round-trip time: every chunk waits RTT/2 in each direction, and a new
// connection waits one RTT before its first byte goes upstream (the TCP handshake it would cost).
// It also counts the bytes it carries, so the harness can read what came from the registry.
// Usage: node latency-proxy.mjs --target HOST:PORT --rtt-ms N
// Prints `{"port":P,"statsPort":S}` once listening on 127.0.0.1; GET http://127.0.0.1:S/ returns
// {"down":bytes from the target,"up":bytes to it,"connections":n}. SIGTERM stops it.
import { createServer as createHttpServer } from 'node:http';
import { connect, createServer } from 'node:net';
import { parseArgs } from 'node:util';

const { values } = parseArgs({
  options: { target: { type: 'string' }, 'rtt-ms': { type: 'string', default: '0' } },
});
const [targetHost, targetPort] = (values.target ?? '').split(':');
const rttMs = Number(values['rtt-ms']);
if (!targetHost || !targetPort || !(rttMs >= 0)) {
  console.error('usage: latency-proxy.mjs --target HOST:PORT --rtt-ms N');
  process.exit(2);
}
const oneWayMs = rttMs / 2;
// Bytes held in one direction before the sender is paused; far above 100 Mbit/s x 20 ms, so the
// window never limits throughput more than the shaped link does.
const HIGH_WATER = 8 * 1024 * 1024;
const stats = { down: 0, up: 0, connections: 0 };

/** Forwards src -> dst, delaying each chunk by oneWayMs, keeping order and bounding what is held. */
function delayedPipe(src, dst, count) {
  const queue = [];
  let held = 0;
  let timer;
  let ended = false;
  const drain = () => {
    timer = undefined;
    const now = performance.now();
    while (queue.length > 0 && queue[0].due <= now) {
      const { chunk } = queue.shift();
      held -= chunk.length;
      count(chunk.length);
      dst.write(chunk);
    }
    if (held < HIGH_WATER && src.isPaused()) src.resume();
    if (queue.length > 0) timer = setTimeout(drain, Math.max(0, queue[0].due - performance.now()));
    else if (ended) dst.end();
  };
  src.on('data', (chunk) => {
    if (oneWayMs === 0) {
      count(chunk.length);
      if (!dst.write(chunk)) {
        src.pause();
        dst.once('drain', () => src.resume());
      }
      return;
    }
    queue.push({ chunk, due: performance.now() + oneWayMs });
    held += chunk.length;
    if (held >= HIGH_WATER) src.pause();
    if (!timer) timer = setTimeout(drain, oneWayMs);
  });
  src.on('end', () => {
    ended = true;
    if (!timer) dst.end();
  });
}

const server = createServer({ pauseOnConnect: true }, (client) => {
  stats.connections++;
  const open = () => {
    const upstream = connect({ host: targetHost, port: Number(targetPort) }, () => {
      delayedPipe(client, upstream, (n) => {
        stats.up += n;
      });
      delayedPipe(upstream, client, (n) => {
        stats.down += n;
      });
      client.resume();
    });
    const close = () => {
      client.destroy();
      upstream.destroy();
    };
    // Each side's end is passed on by delayedPipe once what it sent has been delivered.
    upstream.on('error', close);
    client.on('error', close);
  };
  if (rttMs > 0) setTimeout(open, rttMs);
  else open();
});

const statsServer = createHttpServer((_req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify(stats));
});

server.listen(0, '127.0.0.1', () => {
  statsServer.listen(0, '127.0.0.1', () => {
    console.log(JSON.stringify({ port: server.address().port, statsPort: statsServer.address().port }));
  });
});
process.on('SIGTERM', () => process.exit(0));
