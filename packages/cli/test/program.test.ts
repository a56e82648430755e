import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { digestOf } from '@soci-ts/oci-referrers';

import { LocalStore } from '@soci-ts/soci-index';
import { run } from '@soci-ts/testing';

import { describe, expect, it } from 'vitest';

import { buildFixtureImage } from '../../soci-index/test/fixture.js';

import { bufferIo, main } from '../src/index.js';
import { formatRow, Progress } from '../src/progress.js';

import { soci, tempRoot } from './helpers.js';

describe('soci program', () => {
  it('--help lists the commands and exits 0; an unknown command is a usage error (exit 2)', async () => {
    const io = bufferIo();
    expect(await main(['--help'], io)).toBe(0);
    for (const cmd of ['create', 'push', 'convert', 'index', 'ztoc', 'cat', 'pull'])
      expect(io.stdout).toContain(cmd);
    const bad = await soci('frobnicate');
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/unknown command/);
  });

  it('rejects bad flag values with one line that names the flag, exit 2', async () => {
    const root = await tempRoot();
    for (const [args, flag] of [
      [['create', 'oci:/nonexistent', '--span-size', 'big'], '--span-size'],
      [['push', 'x/y:z', '--existing-index', 'maybe'], '--existing-index'],
      [['index', 'rm'], 'soci index rm'],
    ] as const) {
      const r = await soci(...args, '--root', root);
      expect(r.code).toBe(2);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(flag);
    }
  });

  it('an explicit --platform that a single-platform image does not have is an error', async () => {
    const image = await buildFixtureImage();
    try {
      const r = await soci(
        'create',
        `oci:${image.layout}:${image.tag}`,
        '--platform',
        'linux/s390x',
        '--root',
        await tempRoot(),
      );
      expect(r.code).toBe(1);
      expect(r.stderr).toMatch(/single-platform image for linux\/.*, not linux\/s390x/);
    } finally {
      await image.cleanup();
    }
  });

  it('with --json a failure is one JSON object on stderr, stdout stays empty', async () => {
    const root = await tempRoot();
    const usage = await soci('create', 'oci:/nonexistent', '--bogus', '--json', '--root', root);
    expect(usage.code).toBe(2);
    expect(usage.stdout).toBe('');
    expect(JSON.parse(usage.stderr)).toEqual({
      error: { code: 'CLI_USAGE', message: "unknown option '--bogus'" },
    });
    const failed = await soci('create', 'oci:/nonexistent/layout:tag', '--json', '--root', root);
    expect(failed.code).toBe(1);
    expect(failed.stdout).toBe('');
    const { error } = JSON.parse(failed.stderr);
    expect(error.message).toMatch(/nonexistent/);
    expect(typeof error.code).toBe('string');
    expect(failed.stderr.trim().split('\n')).toHaveLength(1);
    // Without --json the same failure is the one text line.
    expect((await soci('create', 'oci:/nonexistent/layout:tag', '--root', root)).stderr).toMatch(
      /^soci: .*nonexistent/,
    );
  });

  it('store-only commands show and take only the flags they use', async () => {
    for (const cmd of [
      ['index', 'list'],
      ['index', 'info'],
      ['index', 'rm'],
      ['ztoc', 'list'],
      ['ztoc', 'info'],
    ]) {
      const help = await soci(...cmd, '--help');
      expect(help.code).toBe(0);
      expect(help.stdout).toContain('--root');
      for (const flag of [
        '--plain-http',
        '--insecure',
        '--user',
        '--password-stdin',
        '--containerd-address',
        '--namespace',
      ])
        expect(help.stdout, `${cmd.join(' ')} ${flag}`).not.toContain(flag);
    }
    const r = await soci('index', 'list', '--plain-http', '--root', await tempRoot());
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/unknown option '--plain-http'/);
    // Commands that read images keep them.
    for (const cmd of [['create'], ['push'], ['cat'], ['ztoc', 'get-file'], ['convert']])
      expect((await soci(...cmd, '--help')).stdout).toContain('--password-stdin');
  });

  it('index list on an empty store prints only the header; --json prints []', async () => {
    const root = await tempRoot();
    expect((await soci('index', 'list', '--root', root)).stdout).toMatch(/^DIGEST\s+SIZE/);
    expect(JSON.parse((await soci('index', 'list', '--root', root, '--json')).stdout)).toEqual([]);
  });
});

describe('progress', () => {
  it('draws rows with bytes and MB/s only when enabled', () => {
    let t = 0;
    const io = bufferIo({ isTTY: true });
    const p = new Progress(io, true, () => t);
    p.update('a', { label: 'layer-a', total: 4e6, done: 0, state: 'reading' });
    t = 1000;
    p.update('a', { done: 2e6 });
    p.update('a', { done: 4e6, state: 'done' });
    expect(io.stderr).toContain('4.0/4.0 MB');
    expect(io.stderr).toContain('4.0 MB/s');
    const quiet = bufferIo({ isTTY: true });
    new Progress(quiet, false).update('a', { done: 1 });
    expect(quiet.stderr).toBe('');
    expect(formatRow({ label: 'x', total: 0, done: 0, state: 'skipped', startedAt: 0 }, 0)).toMatch(
      /x\s+0.0 MB\s+skipped/,
    );
  });
});

/** Every blob's content matches its name, index.json parses, and every listed index has its blobs. */
async function expectConsistentStore(root: string) {
  const store = await LocalStore.open(root); // completes a store whose first open was cut short
  const blobs = join(root, 'blobs', 'sha256');
  for (const name of await readdir(blobs)) {
    expect(digestOf(await readFile(join(blobs, name)))).toBe(`sha256:${name}`);
  }
  for (const entry of await store.listIndexes()) {
    const index = await store.readSociIndex(entry.digest);
    for (const z of index.ztocs) await store.readBlob(z.digest);
  }
}

describe('built bin', () => {
  const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
  it.skipIf(!existsSync(bin))('runs as a process: --version, and a one-line error with exit 1', async () => {
    expect((await run('node', [bin, '--version'])).stdout.trim()).toBe('0.1.0');
    const err = await run('node', [bin, 'create', 'NOT A REF']).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).message).toMatch(/exited with 1: soci: invalid image reference/);
  });

  it.skipIf(!existsSync(bin))('a create killed at any moment leaves a consistent store', async () => {
    const image = await buildFixtureImage();
    const root = await tempRoot();
    try {
      for (const delayMs of [0, 30, 80, 150, 250, 400, 700]) {
        const child = spawn(
          'node',
          [
            bin,
            'create',
            `oci:${image.layout}:${image.tag}`,
            '--root',
            root,
            '--min-layer-size',
            '0',
            '--span-size',
            '16384',
            '--quiet',
          ],
          { stdio: 'ignore' },
        );
        // Listen before the delay: a fast create may finish (and emit 'exit') before the kill.
        const exited = new Promise((r) => child.once('exit', r));
        await new Promise((r) => setTimeout(r, delayMs));
        child.kill('SIGKILL');
        await exited;
        await expectConsistentStore(root);
      }
    } finally {
      await image.cleanup();
    }
  });

  it.skipIf(!existsSync(bin))('builds on worker threads the same index as in-process', async () => {
    const image = await buildFixtureImage();
    try {
      const args = [
        'create',
        `oci:${image.layout}:${image.tag}`,
        '--min-layer-size',
        '65536',
        '--span-size',
        '65536',
        '--json',
      ];
      const [rootA, rootB] = [await tempRoot(), await tempRoot()];
      const viaWorkers = JSON.parse((await run('node', [bin, ...args, '--root', rootA])).stdout);
      const inProcess = JSON.parse((await soci(...args, '--root', rootB)).stdout);
      expect(viaWorkers[0].digest).toBe(inProcess[0].digest);
    } finally {
      await image.cleanup();
    }
  });
});
