import { lstat, rm } from 'node:fs/promises';
import { connect } from 'node:net';

/** What is at a path a server wants to listen on. */
export type SocketPathState = 'absent' | 'stale' | 'live' | 'not-a-socket';

/**
 * Looks at a unix socket path before listening: a socket nobody accepts on is `stale` (its
 * server died) and may be removed; a `live` one belongs to a running server; anything else is
 * somebody's file and must never be removed (a wrong path in a config is not a reason to delete
 * a program).
 */
export async function socketPathState(path: string): Promise<SocketPathState> {
  let isSocket: boolean;
  try {
    isSocket = (await lstat(path)).isSocket();
  } catch {
    return 'absent';
  }
  if (!isSocket) return 'not-a-socket';
  return new Promise((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve('live');
    });
    probe.once('error', () => resolve('stale'));
  });
}

/** Removes a stale socket file; only ever a socket. */
export async function removeStaleSocket(path: string): Promise<void> {
  if ((await socketPathState(path)) === 'stale') await rm(path, { force: true });
}
