import { spawn } from 'node:child_process';
import { existsSync, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { hasCode } from '@soci-ts/errors';
import { KeeperFuseBackend, LazyFsError, socketPathState } from '@soci-ts/lazy-fs';
import type { Logger } from 'pino';
import type { SnapshotterConfig } from '../config.js';

/**
 * The launcher sizes the keeper's thread pool (one blocking /dev/fuse read per mount) before
 * Node starts. It sits in the package's bin/, above src/soci/ (tests) or dist/ (bundled).
 */
export function keeperLauncher(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (let i = 0; i < 4; i++) {
    const candidate = join(dir, 'bin', 'soci-fuse-keeper.cjs');
    if (existsSync(candidate)) return candidate;
    dir = dirname(dir);
  }
  throw new LazyFsError(
    'LAZYFS_KEEPER_UNAVAILABLE',
    'bin/soci-fuse-keeper.cjs is missing from the installed package',
  );
}
/** A keeper this daemon started stops this long after its last mount went (a systemd unit's never does). */
const STARTED_KEEPER_IDLE_EXIT = '60s';

/**
 * The daemon's side of the FUSE keeper: its backend, and starting a keeper when none runs
 * (`fuse_keeper.start`). A keeper started here runs detached in its own session, so a SIGKILL
 * of the daemon leaves it, but it stays in the daemon's cgroup: under systemd, install
 * soci-fuse-keeper.service so that `systemctl restart soci-snapshotter` cannot reach it.
 */
export class FuseKeeperLink {
  readonly backend: KeeperFuseBackend;
  private starting: Promise<void> | undefined;

  constructor(
    private readonly config: SnapshotterConfig,
    private readonly logger: Logger,
  ) {
    this.backend = new KeeperFuseBackend({
      socketPath: config.fuseKeeper.socket,
      onError: (err, opcode) => logger.warn({ err, opcode }, 'a FUSE request failed; the reader got EIO'),
    });
  }

  /** Runs `use`; when no keeper answers and starting one is allowed, starts one and runs it again. */
  async withKeeper<T>(use: (backend: KeeperFuseBackend) => Promise<T>): Promise<T> {
    try {
      return await use(this.backend);
    } catch (err) {
      if (!hasCode(err, 'LAZYFS_KEEPER_UNAVAILABLE') || !this.config.fuseKeeper.start) throw err;
      await this.start();
      return use(this.backend);
    }
  }

  /** Whether the keeper holds a session at `mountpoint` (a mount a previous daemon served). */
  async holds(mountpoint: string): Promise<boolean> {
    try {
      const sessions = await this.backend.sessions();
      return sessions.some((s) => s.mountpoint === resolve(mountpoint));
    } catch {
      return false;
    }
  }

  private start(): Promise<void> {
    this.starting ??= this.launch().finally(() => {
      this.starting = undefined;
    });
    return this.starting;
  }

  private async launch(): Promise<void> {
    const { socket, waitForDaemonMs } = this.config.fuseKeeper;
    // Another daemon may have started one meanwhile.
    if ((await socketPathState(socket)) === 'live') return;
    const logFile = join(this.config.root, 'fuse-keeper.log');
    const out = openSync(logFile, 'a');
    const child = spawn(
      process.execPath,
      [
        keeperLauncher(),
        '--socket',
        socket,
        '--wait-for-daemon',
        `${waitForDaemonMs}ms`,
        '--exit-when-idle',
        STARTED_KEEPER_IDLE_EXIT,
      ],
      { detached: true, stdio: ['ignore', out, out] },
    );
    child.unref();
    const unit = await systemdUnit();
    this.logger.info({ pid: child.pid, socket, log: logFile }, 'started a FUSE keeper');
    if (unit) {
      this.logger.warn(
        { unit },
        "the FUSE keeper runs in this service's cgroup: restarting the service ends running containers' lazy mounts; install soci-fuse-keeper.service (docs/install.md)",
      );
    }
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      if ((await socketPathState(socket)) === 'live') return;
      if (child.exitCode !== null) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new LazyFsError(
      'LAZYFS_KEEPER_UNAVAILABLE',
      `the FUSE keeper started for ${socket} did not answer; see ${logFile}`,
    );
  }
}

/** The systemd service this process runs in, if any (cgroup v2 path ending in `.service`). */
async function systemdUnit(): Promise<string | undefined> {
  const text = await readFile('/proc/self/cgroup', 'utf8').catch(() => '');
  return /\/([^/\n]+\.service)\s*$/m.exec(text)?.[1];
}
