import { chmod, closeSync, existsSync, openSync, read, writeFileSync, writeSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import { LazyFsError } from '../errors.js';
import { removeStaleSocket, socketPathState } from '../unix-socket.js';
import { type KeeperRequest, type KeeperResponse, readLine, sendLine } from './keeper-protocol.js';
import { mountDevice, runTool } from './mount-table.js';
import { encodeReply, expectsReply, KEEPER_READ_BUFFER, MessageFramer, Opcode } from './wire.js';

const EIO = 5;
const ENOTCONN = 107;
const RETRY_CODES = new Set(['EINTR', 'EAGAIN', 'ENOENT']);

export interface FuseKeeperOptions {
  /** Unix socket daemons connect to. */
  socketPath: string;
  /**
   * How long a request may wait for a daemon while none is attached (a restart in progress)
   * before it is answered with EIO. Default 60 s.
   */
  waitForDaemonMs?: number;
  /** Stop after this long with no session and no client; 0 (default) runs until closed. */
  idleExitMs?: number;
  log?: (level: 'info' | 'warn' | 'error', msg: string, fields?: Record<string, unknown>) => void;
}

export interface FuseKeeper {
  readonly socketPath: string;
  /**
   * Resolves when the keeper stopped (closed, or idle for `idleExitMs`), with the number of
   * connections the kernel still kept open (busy mounts fusectl could not abort): a read of
   * each is still blocked in the thread pool, so the process can only end with SIGKILL.
   */
  readonly stopped: Promise<{ leftOpen: number }>;
  /** Unmounts every session (running containers lose them) and stops. */
  close(): Promise<void>;
}

interface Pending {
  msg: Buffer;
  at: number;
}

/** One FUSE connection the keeper holds open: the /dev/fuse fd and the kernel's unanswered requests. */
interface KeptSession {
  mountpoint: string;
  fd: number;
  /** Its number under /sys/fs/fuse/connections (undefined if the mount table did not say). */
  connection: number | undefined;
  client: Socket | undefined;
  pending: Map<bigint, Pending>;
  ending: boolean;
  /** Resolves when the kernel ended the connection and the fd is closed. */
  ended: Promise<void>;
}

/**
 * The long-lived owner of FUSE sessions. It opens /dev/fuse, mounts, and relays kernel
 * requests to the daemon attached to each session and the daemon's replies back. When a
 * daemon goes away (restart, crash, upgrade) the mounts stay up: the kernel's requests wait
 * here and go to the next daemon that attaches, including those the old daemon read but never
 * answered. It knows nothing of layers, registries or caches, so it rarely needs to change;
 * if it dies, its sessions die with it (the one case that breaks running containers).
 */
export async function startFuseKeeper(options: FuseKeeperOptions): Promise<FuseKeeper> {
  const log = options.log ?? (() => {});
  const waitMs = options.waitForDaemonMs ?? 60_000;
  const sessions = new Map<string, KeptSession>();
  const clients = new Set<Socket>();
  let idleSince = Date.now();
  let closing: Promise<void> | undefined;
  /** Every session whose fd is still open, unmounted or not. */
  const open = new Set<KeptSession>();
  let stop: (result: { leftOpen: number }) => void = () => {};
  const stopped = new Promise<{ leftOpen: number }>((done) => {
    stop = done;
  });

  await mkdir(dirname(options.socketPath), { recursive: true });
  await claimSocket(options.socketPath);
  await ensureFusectl(log);
  const server: Server = createServer((socket) => {
    clients.add(socket);
    socket.once('close', () => {
      clients.delete(socket);
      idleSince = Date.now();
    });
    socket.on('error', () => {});
    readLine(socket).then(
      ({ line, rest }) => {
        let request: KeeperRequest;
        try {
          request = JSON.parse(line) as KeeperRequest;
        } catch {
          sendLine(socket, { ok: false, code: 'BAD_REQUEST', message: 'the first line is not JSON' });
          socket.end();
          return;
        }
        handle(socket, request, rest);
      },
      () => socket.destroy(),
    );
  });
  await new Promise<void>((ok, fail) => {
    server.once('error', fail);
    server.listen(options.socketPath, () => ok());
  });
  await new Promise<void>((done) => chmod(options.socketPath, 0o600, () => done()));

  const timer = setInterval(() => {
    const now = Date.now();
    for (const s of sessions.values()) if (!s.client) answerOverdue(s, now - waitMs);
    if (
      options.idleExitMs &&
      sessions.size === 0 &&
      clients.size === 0 &&
      now - idleSince > options.idleExitMs
    ) {
      log('info', 'no FUSE sessions left; the keeper stops');
      void close();
    }
  }, 1000);
  timer.unref();

  function answerOverdue(s: KeptSession, before: number): void {
    for (const [unique, p] of s.pending) {
      // An INIT answered with an error ends the connection for good (later requests get
      // ECONNREFUSED, even once a daemon attaches): a mount whose daemon died before answering
      // it waits for the next one.
      if (p.at > before || p.msg.readUInt32LE(4) === Opcode.INIT) continue;
      s.pending.delete(unique);
      writeReply(s, encodeReply(unique, EIO));
      log('warn', 'no daemon answered a FUSE request in time; the reader got EIO', {
        mountpoint: s.mountpoint,
        waitForDaemonMs: waitMs,
      });
    }
  }

  /**
   * Answers every request of an unmounted session with `errno`: its daemon is gone and no other
   * will attach, and the timer no longer sees the session (a reader would wait forever, unkillably).
   */
  function answerAll(s: KeptSession, errno: number): void {
    for (const unique of s.pending.keys()) writeReply(s, encodeReply(unique, errno));
    s.pending.clear();
  }

  function writeReply(s: KeptSession, frame: Buffer): void {
    try {
      writeSync(s.fd, frame);
    } catch {
      // ENOENT: the request was interrupted meanwhile; ENODEV: the mount is gone. Nobody waits.
    }
  }

  function handle(socket: Socket, request: KeeperRequest, rest: Buffer): void {
    const answer = (response: KeeperResponse) => sendLine(socket, response);
    switch (request.op) {
      case 'list':
        answer({
          ok: true,
          sessions: [...sessions.values()].map((s) => ({
            mountpoint: s.mountpoint,
            attached: s.client !== undefined,
            pending: s.pending.size,
          })),
        });
        socket.end();
        return;
      case 'mount':
        mountSession(request.mountpoint, request.fsName, request.mountOptions).then(
          (s) => {
            answer({ ok: true });
            attach(s, socket, rest);
          },
          (err: Error) => {
            answer({ ok: false, code: 'MOUNT_FAILED', message: err.message });
            socket.end();
          },
        );
        return;
      case 'attach': {
        const s = sessions.get(request.mountpoint);
        if (!s) {
          answer({ ok: false, code: 'NO_SESSION', message: `no FUSE session at ${request.mountpoint}` });
          socket.end();
          return;
        }
        answer({ ok: true });
        attach(s, socket, rest);
        return;
      }
      case 'unmount': {
        const s = sessions.get(request.mountpoint);
        // Answered once the mount is gone from the namespace; a busy mount's connection may
        // live on (its requests get ENOTCONN), which nobody needs to wait for.
        (s ? endSession(s).then(() => within(s.ended, 2000)) : Promise.resolve()).then(() => {
          answer({ ok: true });
          socket.end();
        });
        return;
      }
      default:
        answer({ ok: false, code: 'BAD_REQUEST', message: 'unknown keeper request' });
        socket.end();
    }
  }

  function attach(s: KeptSession, socket: Socket, rest: Buffer): void {
    if (s.client) {
      log('info', 'a new daemon takes the FUSE session over', { mountpoint: s.mountpoint });
      s.client.destroy();
    }
    s.client = socket;
    const framer = new MessageFramer();
    const onReplies = (chunk: Buffer) => {
      let frames: Buffer[];
      try {
        frames = framer.push(chunk);
      } catch (err) {
        log('error', 'a daemon sent a malformed FUSE reply; it is disconnected', {
          mountpoint: s.mountpoint,
          err: String(err),
        });
        socket.destroy();
        return;
      }
      for (const frame of frames) {
        const unique = frame.readBigUInt64LE(8);
        // A reply to a request already answered (EIO after the wait) goes nowhere.
        if (unique !== 0n && !s.pending.delete(unique)) continue;
        writeReply(s, frame);
      }
    };
    socket.on('data', onReplies);
    socket.resume();
    const onClose = () => {
      if (s.client !== socket) return;
      s.client = undefined;
      if (s.ending) answerAll(s, ENOTCONN);
      else {
        log('info', 'the daemon left the FUSE session; requests wait for the next one', {
          mountpoint: s.mountpoint,
          pending: s.pending.size,
        });
      }
    };
    socket.once('close', onClose);
    // A daemon that went away while its mount was being made closed before anyone listened here.
    if (socket.destroyed) onClose();
    if (rest.length > 0) onReplies(rest);
    // What the kernel asked and nobody answered goes to the new daemon, oldest first.
    for (const p of s.pending.values()) socket.write(p.msg);
  }

  async function mountSession(
    mountpoint: string,
    fsName: string,
    mountOptions: readonly string[],
  ): Promise<KeptSession> {
    if (sessions.has(mountpoint)) throw new Error(`${mountpoint} already has a FUSE session; attach to it`);
    const fd = openSync('/dev/fuse', 'r+');
    try {
      const data = ['fd=3', 'rootmode=40000', 'user_id=0', 'group_id=0', ...mountOptions].join(',');
      await runTool('mount', ['-i', '-t', 'fuse.soci', '-o', data, fsName, mountpoint], { fd });
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    let ended: () => void = () => {};
    const s: KeptSession = {
      mountpoint,
      fd,
      connection: (await mountDevice(mountpoint))?.minor,
      client: undefined,
      pending: new Map(),
      ending: false,
      ended: new Promise((done) => {
        ended = done;
      }),
    };
    sessions.set(mountpoint, s);
    open.add(s);
    log('info', 'FUSE session mounted', { mountpoint });
    readLoop(s, Buffer.allocUnsafe(KEEPER_READ_BUFFER), () => {
      closeSync(fd);
      open.delete(s);
      if (sessions.get(mountpoint) === s) sessions.delete(mountpoint);
      s.client?.destroy();
      idleSince = Date.now();
      log('info', 'FUSE session ended', { mountpoint });
      ended();
    });
    return s;
  }

  /** One outstanding read per session, in the thread pool (the launcher sizes it). */
  function readLoop(s: KeptSession, buffer: Buffer, onEnd: () => void): void {
    read(s.fd, buffer, 0, buffer.length, null, (err, n) => {
      if (err) {
        if (RETRY_CODES.has(err.code ?? '')) return readLoop(s, buffer, onEnd);
        // ENODEV: unmounted (or aborted). Anything else would repeat: end the session too.
        if (err.code !== 'ENODEV')
          log('error', 'reading /dev/fuse failed', { mountpoint: s.mountpoint, err: String(err) });
        return onEnd();
      }
      const msg = Buffer.from(buffer.subarray(0, n));
      const unique = msg.readBigUInt64LE(8);
      const reply = expectsReply(msg.readUInt32LE(4));
      if (s.ending && !s.client) {
        // Unmounted, but a process still has a file open (and the connection could not be
        // aborted): no daemon comes any more, and it must not wait for one.
        if (reply) writeReply(s, encodeReply(unique, ENOTCONN));
      } else {
        if (reply) s.pending.set(unique, { msg, at: Date.now() });
        s.client?.write(msg);
      }
      readLoop(s, buffer, onEnd);
    });
  }

  /** Unmounts and aborts the connection; `s.ended` resolves when the kernel ended it. */
  async function endSession(s: KeptSession): Promise<void> {
    if (!s.ending) {
      s.ending = true;
      sessions.delete(s.mountpoint);
      // Never stat our own mount here: the kernel would ask this very process, which waits.
      await runTool('umount', ['-l', s.mountpoint]).catch(() => undefined);
      // A busy mount outlives a lazy unmount; aborting its connection ends it for good.
      if (s.connection !== undefined) {
        try {
          writeFileSync(`/sys/fs/fuse/connections/${s.connection}/abort`, '1');
        } catch {
          // fusectl not mounted: the connection ends when its last user goes.
        }
      }
      if (!s.client) answerAll(s, ENOTCONN);
    }
  }

  function close(): Promise<void> {
    closing ??= (async () => {
      clearInterval(timer);
      if (sessions.size > 0) {
        log('warn', 'the keeper stops: its FUSE sessions end, containers on them lose their files', {
          sessions: sessions.size,
        });
      }
      // A mount still busy after its lazy unmount keeps its connection until its last user
      // goes (unless fusectl can abort it): do not wait for those forever.
      await Promise.all([...sessions.values()].map(endSession));
      await within(Promise.all([...open].map((s) => s.ended)), 5000);
      for (const c of clients) c.destroy();
      await new Promise<void>((done) => server.close(() => done()));
      stop({ leftOpen: open.size });
    })();
    return closing;
  }

  return { socketPath: options.socketPath, stopped, close };
}

/** Waits for `promise`, at most `ms`. */
function within(promise: Promise<unknown>, ms: number): Promise<unknown> {
  return Promise.race([promise, new Promise((done) => setTimeout(done, ms).unref())]);
}

/**
 * fusectl (/sys/fs/fuse/connections) lets the keeper abort the connection of a mount still busy
 * after its lazy unmount. systemd mounts it at boot; where nothing did, the keeper does.
 */
async function ensureFusectl(log: NonNullable<FuseKeeperOptions['log']>): Promise<void> {
  const dir = '/sys/fs/fuse/connections';
  if (!existsSync(dir) || (await mountDevice(dir)) !== undefined) return;
  await runTool('mount', ['-t', 'fusectl', 'fusectl', dir]).then(
    () => log('info', 'mounted fusectl, to end busy unmounted sessions', { dir }),
    () => undefined,
  );
}

/** Listens only where nothing but a dead socket is: never removes another file or a live keeper's socket. */
async function claimSocket(path: string): Promise<void> {
  const state = await socketPathState(path);
  if (state === 'live') {
    throw new LazyFsError(
      'LAZYFS_KEEPER_REFUSED',
      `another FUSE keeper answers at ${path}; stop it or choose another socket`,
    );
  }
  if (state === 'not-a-socket') {
    throw new LazyFsError(
      'LAZYFS_KEEPER_REFUSED',
      `${path} exists and is not a socket; choose another socket path`,
    );
  }
  await removeStaleSocket(path);
}
