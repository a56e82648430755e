import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';

export const silentLogger = pino({ level: 'silent' });

export async function withTempDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'soci-sn-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** vite-node (shipped with vitest) runs a TypeScript file in a child process; there is no tsx here. */
function viteNodeBin(): string {
  const fromVitest = createRequire(createRequire(import.meta.url).resolve('vitest/package.json'));
  return join(dirname(fromVitest.resolve('vite-node/package.json')), 'vite-node.mjs');
}

export interface TsRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a TypeScript file of this package as a separate Node process and collects its output. */
export function spawnTs(file: string, args: readonly string[] = [], opts: { killAfterMs?: number } = {}) {
  const child = spawn(process.execPath, [viteNodeBin(), file, '--', ...args], {
    cwd: join(import.meta.dirname, '..'),
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (b: Buffer) => {
    stdout += b.toString();
  });
  child.stderr.on('data', (b: Buffer) => {
    stderr += b.toString();
  });
  const done = new Promise<TsRun>((resolve) => {
    child.on('close', (code, signal) => resolve({ code, signal, stdout, stderr }));
  });
  if (opts.killAfterMs !== undefined) setTimeout(() => child.kill('SIGKILL'), opts.killAfterMs);
  return { child, done, output: () => stdout, stderr: () => stderr };
}
