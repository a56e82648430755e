import { type ChildProcess, spawn } from 'node:child_process';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { dirname, join } from 'node:path';

/** What a finished tool run printed. */
export interface RunResult {
  stdout: string;
  stderr: string;
}

/**
 * Runs a tool to completion and returns what it printed; rejects with its stderr when it exits non-zero,
 * so a failing test shows the tool's own complaint.
 */
export function run(
  command: string,
  args: readonly string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string | Uint8Array } = {},
): Promise<RunResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const out: Buffer[] = [];
    const err: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => out.push(b));
    child.stderr.on('data', (b: Buffer) => err.push(b));
    child.on('error', reject);
    child.on('close', (code, signal) => {
      const result = { stdout: Buffer.concat(out).toString(), stderr: Buffer.concat(err).toString() };
      if (code === 0) resolve(result);
      else
        reject(
          new Error(
            `${command} ${args.join(' ')} exited with ${code ?? signal}: ${result.stderr.trim() || result.stdout.trim()}`,
          ),
        );
    });
    child.stdin.end(options.input);
  });
}

/** A free TCP port on 127.0.0.1 (bound and released, so a tiny race with other processes remains). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.on('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Polls `check` until it resolves true, or fails after `timeoutMs` with what the server said last. */
export async function waitUntil(
  what: string,
  check: () => Promise<boolean>,
  timeoutMs = 15_000,
  child?: ChildProcess,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    if (child && child.exitCode !== null) throw new Error(`${what} exited early with code ${child.exitCode}`);
    try {
      if (await check()) return;
    } catch (e) {
      lastError = e;
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${what} did not become ready in ${timeoutMs} ms (${String(lastError ?? 'no answer')})`);
}

/** Stops a child process: SIGTERM, then SIGKILL if it has not exited after a grace period. */
export function stopChild(child: ChildProcess, graceMs = 3000): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

/** vite-node (shipped with vitest) runs a TypeScript file in a child process; there is no tsx here. */
function viteNodeBin(): string {
  // Resolved from the package whose tests run (vitest's cwd): every package reaches vitest there.
  const fromCwd = createRequire(join(process.cwd(), 'noop.js'));
  const fromVitest = createRequire(fromCwd.resolve('vitest/package.json'));
  return join(dirname(fromVitest.resolve('vite-node/package.json')), 'vite-node.mjs');
}

export interface TsRun {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Runs a TypeScript file of the package under test (a path relative to vitest's cwd, the
 * package directory) as a separate Node process and collects its output.
 */
export function spawnTs(
  file: string,
  args: readonly string[] = [],
  opts: { killAfterMs?: number; env?: NodeJS.ProcessEnv } = {},
) {
  const child = spawn(process.execPath, [viteNodeBin(), file, '--', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: opts.env ? { ...process.env, ...opts.env } : process.env,
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
