import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { LazyFsError, socketPathState } from '@soci-ts/lazy-fs';
import { waitUntil } from '@soci-ts/testing/process';
import { pino } from 'pino';
import { afterEach, describe, expect, it } from 'vitest';
import { defaultConfig } from '../src/config.js';
import { FuseKeeperLink, keeperLauncher } from '../src/soci/fuse-keeper-link.js';

const canFuse = process.getuid?.() === 0 && existsSync('/dev/fuse');
// The launcher loads the built keeper (dist/): scripts/test builds before the package tests.
const built = existsSync(join(import.meta.dirname, '../dist/fuse-keeper-main.js'));

describe.skipIf(!canFuse || !built)("the daemon's link to the FUSE keeper", () => {
  const dirs: string[] = [];
  const pids: number[] = [];
  afterEach(async () => {
    for (const pid of pids.splice(0)) {
      try {
        process.kill(pid, 'SIGTERM');
      } catch {
        // Gone already.
      }
    }
    for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
  });

  async function setup(start: boolean) {
    const root = await mkdtemp(join(tmpdir(), 'keeper-link-'));
    dirs.push(root);
    const config = defaultConfig(root);
    config.fuseKeeper = { socket: join(root, 'keeper.sock'), start, waitForDaemonMs: 5000 };
    const lines: string[] = [];
    const logger = pino({ level: 'info' }, { write: (line: string) => lines.push(line) });
    return { root, config, link: new FuseKeeperLink(config, logger), lines };
  }

  it('starts a keeper when none answers, detached, logging to <root>/fuse-keeper.log', async () => {
    const { root, config, link, lines } = await setup(true);
    expect(await socketPathState(config.fuseKeeper.socket)).toBe('absent');
    expect(await link.withKeeper((backend) => backend.sessions())).toEqual([]);
    expect(await socketPathState(config.fuseKeeper.socket)).toBe('live');
    const started = lines
      .map((l) => JSON.parse(l) as { msg: string; pid?: number })
      .find((l) => l.msg === 'started a FUSE keeper');
    const pid = started?.pid ?? 0;
    expect(pid).toBeGreaterThan(0);
    pids.push(pid);
    const log = join(root, 'fuse-keeper.log');
    await waitUntil(
      'the keeper to log',
      async () => (await readFile(log, 'utf8')).includes('FUSE keeper ready'),
      10_000,
    );
    // A second link finds it running: nothing more is started.
    const again = await setup(true);
    again.config.fuseKeeper.socket = config.fuseKeeper.socket;
    const second = new FuseKeeperLink(again.config, pino({ level: 'silent' }));
    expect(await second.withKeeper((backend) => backend.sessions())).toEqual([]);
    expect(await link.holds('/nowhere')).toBe(false);
  });

  it('with start = false, a missing keeper is an error that says what to do', async () => {
    const { config, link } = await setup(false);
    const err = await link.withKeeper((backend) => backend.sessions()).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(LazyFsError);
    expect((err as LazyFsError).code).toBe('LAZYFS_KEEPER_UNAVAILABLE');
    expect((err as Error).message).toContain(config.fuseKeeper.socket);
    expect((err as Error).message).toMatch(/start soci-fuse-keeper/);
    expect(await socketPathState(config.fuseKeeper.socket)).toBe('absent');
  });

  it('finds the launcher in the package', () => {
    expect(keeperLauncher()).toMatch(/bin\/soci-fuse-keeper\.cjs$/);
  });
});
