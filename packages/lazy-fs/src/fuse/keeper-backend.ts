import { mkdir } from 'node:fs/promises';
import { connect, type Socket } from 'node:net';
import { resolve } from 'node:path';
import { hasCode, type SociErrorOptions } from '@soci-ts/errors';
import { LazyFsError, type LazyFsErrorCode, messageOf } from '../errors.js';
import type { FuseBackend, FuseMount, FuseMountOptions, FuseNodeOps } from './backend.js';
import {
  type KeeperRequest,
  type KeeperResponse,
  type KeptSessionInfo,
  readLine,
  sendLine,
} from './keeper-protocol.js';
import { forceUnmount, isMounted } from './mount-table.js';
import { FuseSession } from './session.js';

export interface KeeperFuseBackendOptions {
  /** The keeper's unix socket. */
  socketPath: string;
  /** Longest wait for the keeper's answer. Default 30 s. */
  timeoutMs?: number;
  /** Told of requests a session answered with EIO because something threw. */
  onError?: (err: unknown, opcode: number) => void;
}

/**
 * FUSE through the keeper process: the keeper owns the mount and its /dev/fuse connection,
 * this process answers the requests it relays. `detach` leaves the mount with the keeper and
 * `attach` takes a kept one over, which is how mounts outlive a daemon restart.
 */
export class KeeperFuseBackend implements FuseBackend {
  constructor(private readonly options: KeeperFuseBackendOptions) {}

  async mount(mountpoint: string, ops: FuseNodeOps, options: FuseMountOptions): Promise<FuseMount> {
    const mnt = resolve(mountpoint);
    if (await isMounted(mnt)) {
      // The keeper's own session is taken over (attach), never mounted over: looking at it would
      // wait for a daemon, unmounting it would take it from the containers using it.
      const kept = await this.sessions().catch(() => []);
      if (kept.some((s) => s.mountpoint === mnt)) {
        throw new LazyFsError(
          'LAZYFS_MOUNT_FAILED',
          `the FUSE keeper holds a session at ${mnt}; attach to it`,
        );
      }
      // A mount whose keeper died answers ENOTCONN, to the mkdir below too: clear it first.
      await forceUnmount(mnt);
    }
    try {
      await mkdir(mnt, { recursive: true });
    } catch (err) {
      throw new LazyFsError('LAZYFS_MOUNT_FAILED', `cannot mount at ${mnt}: ${messageOf(err)}`, {
        cause: err,
      });
    }
    const mountOptions = ['ro', 'nosuid', 'nodev'];
    if (options.allowOther ?? true) mountOptions.push('allow_other');
    if (options.defaultPermissions ?? true) mountOptions.push('default_permissions');
    const fsName = (options.fsName ?? 'soci-ts').replace(/[,\s]/g, '_');
    const { socket, rest } = await this.open({ op: 'mount', mountpoint: mnt, fsName, mountOptions }).catch(
      (err: unknown) => {
        // No keeper is its own failure: the caller may start one and try again.
        if (hasCode(err, 'LAZYFS_KEEPER_UNAVAILABLE')) throw err;
        throw new LazyFsError(
          'LAZYFS_MOUNT_FAILED',
          `could not mount a FUSE file system at ${mnt}: ${messageOf(err)}`,
          {
            cause: err,
          },
        );
      },
    );
    return this.serve(mnt, socket, rest, ops, options);
  }

  /** Takes over the session the keeper holds at `mountpoint`; undefined when it holds none. */
  async attach(
    mountpoint: string,
    ops: FuseNodeOps,
    options: FuseMountOptions,
  ): Promise<FuseMount | undefined> {
    const mnt = resolve(mountpoint);
    try {
      const { socket, rest } = await this.open({ op: 'attach', mountpoint: mnt });
      return this.serve(mnt, socket, rest, ops, options);
    } catch (err) {
      if (err instanceof KeeperRefusal && err.answer === 'NO_SESSION') return undefined;
      throw err;
    }
  }

  /** The sessions the keeper holds. */
  async sessions(): Promise<KeptSessionInfo[]> {
    const { socket, response } = await this.ask({ op: 'list' });
    socket.destroy();
    return response.ok ? (response.sessions ?? []) : [];
  }

  private serve(
    mnt: string,
    socket: Socket,
    rest: Buffer,
    ops: FuseNodeOps,
    options: FuseMountOptions,
  ): FuseMount {
    const session = new FuseSession(socket, ops, {
      attrTimeout: options.attrTimeout ?? 3600,
      entryTimeout: options.entryTimeout ?? 3600,
      kernelCache: options.kernelCache ?? true,
      onError: this.options.onError,
    });
    if (rest.length > 0) socket.unshift(rest);
    socket.resume();
    let unmounted: Promise<void> | undefined;
    return {
      mountpoint: mnt,
      detach: () => session.close(),
      unmount: () => {
        unmounted ??= (async () => {
          try {
            const { socket: control } = await this.ask({ op: 'unmount', mountpoint: mnt });
            control.destroy();
          } catch {
            // No keeper: whatever is left at the mountpoint is dead; take it away ourselves.
          }
          await session.close();
          if (!(await forceUnmount(mnt))) {
            throw new LazyFsError(
              'LAZYFS_UNMOUNT_FAILED',
              `${mnt} is still mounted; unmount it with umount -l`,
            );
          }
        })();
        return unmounted;
      },
    };
  }

  /** Sends a request that, when granted, turns the connection into a FUSE relay. */
  private async open(request: KeeperRequest): Promise<{ socket: Socket; rest: Buffer }> {
    const { socket, response, rest } = await this.ask(request);
    if (!response.ok) {
      socket.destroy();
      throw new KeeperRefusal('LAZYFS_KEEPER_REFUSED', response.message, { answer: response.code });
    }
    return { socket, rest };
  }

  private ask(request: KeeperRequest): Promise<{ socket: Socket; response: KeeperResponse; rest: Buffer }> {
    const { socketPath } = this.options;
    const timeoutMs = this.options.timeoutMs ?? 30_000;
    return new Promise((ok, fail) => {
      const socket = connect(socketPath);
      const timer = setTimeout(() => {
        socket.destroy();
        fail(unavailable(socketPath, `no answer within ${timeoutMs} ms`));
      }, timeoutMs);
      socket.once('error', (err) => {
        clearTimeout(timer);
        fail(unavailable(socketPath, err.message));
      });
      socket.once('connect', () => {
        sendLine(socket, request);
        readLine(socket).then(
          ({ line, rest }) => {
            clearTimeout(timer);
            try {
              ok({ socket, response: JSON.parse(line) as KeeperResponse, rest });
            } catch {
              socket.destroy();
              fail(unavailable(socketPath, 'it answered something that is not JSON'));
            }
          },
          (err: Error) => {
            clearTimeout(timer);
            fail(unavailable(socketPath, err.message));
          },
        );
      });
    });
  }
}

/**
 * The keeper refused a request. `answer` is the keeper's wire-protocol reason (`MOUNT_FAILED`,
 * `NO_SESSION`, `BAD_REQUEST`): not an error code, since a running keeper outlives upgrades of
 * this package and keeps speaking the protocol it started with.
 */
class KeeperRefusal extends LazyFsError {
  override readonly name: string = 'KeeperRefusal';
  readonly answer: string | undefined;

  constructor(code: LazyFsErrorCode, message: string, options: SociErrorOptions & { answer?: string } = {}) {
    super(code, message, options);
    this.answer = options.answer;
  }
}

function unavailable(socketPath: string, why: string): LazyFsError {
  return new LazyFsError(
    'LAZYFS_KEEPER_UNAVAILABLE',
    `the FUSE keeper at ${socketPath} cannot be reached (${why}); start soci-fuse-keeper (see docs/install.md)`,
  );
}
