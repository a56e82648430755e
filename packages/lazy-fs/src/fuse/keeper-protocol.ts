import type { Socket } from 'node:net';

/**
 * What a daemon and the FUSE keeper say to each other: one JSON line each way when a
 * connection opens; after a successful `mount` or `attach` the connection carries raw FUSE
 * messages (kernel requests to the daemon, replies back), which frame themselves.
 */
export type KeeperRequest =
  | { op: 'list' }
  | { op: 'mount'; mountpoint: string; fsName: string; mountOptions: string[] }
  | { op: 'attach'; mountpoint: string }
  | { op: 'unmount'; mountpoint: string };

export interface KeptSessionInfo {
  mountpoint: string;
  /** A daemon is serving it now. */
  attached: boolean;
  /** Kernel requests waiting for an answer. */
  pending: number;
}

export type KeeperResponse =
  | { ok: true; sessions?: KeptSessionInfo[] }
  | { ok: false; code: 'MOUNT_FAILED' | 'NO_SESSION' | 'BAD_REQUEST'; message: string };

const MAX_LINE = 64 * 1024;

export function sendLine(socket: Socket, value: KeeperRequest | KeeperResponse): void {
  socket.write(`${JSON.stringify(value)}\n`);
}

/** The first line on a connection and the bytes that came after it. */
export function readLine(socket: Socket): Promise<{ line: string; rest: Buffer }> {
  return new Promise((ok, fail) => {
    let seen = Buffer.alloc(0);
    const onData = (chunk: Buffer) => {
      seen = Buffer.concat([seen, chunk]);
      const end = seen.indexOf(0x0a);
      if (end < 0) {
        if (seen.length > MAX_LINE) finish(new Error('the first line is longer than 64 KiB'));
        return;
      }
      finish(undefined, { line: seen.toString('utf8', 0, end), rest: seen.subarray(end + 1) });
    };
    const onClose = () => finish(new Error('the connection closed before a whole line came'));
    const finish = (err?: Error, value?: { line: string; rest: Buffer }) => {
      socket.off('data', onData);
      socket.off('close', onClose);
      socket.off('error', onClose);
      socket.pause();
      if (err) fail(err);
      else ok(value!);
    };
    socket.on('data', onData);
    socket.once('close', onClose);
    socket.once('error', onClose);
  });
}
