import { spawn, spawnSync } from 'node:child_process';
import { abortedError } from './abort.js';
import { UnpackError } from './errors.js';

/**
 * Runs a helper tool (Node has no mknod, mkfifo or xattr API) with `input` on stdin.
 * Resolves with its stderr when it exits 0; otherwise TOOL_FAILED with what it said, or ABORTED.
 */
export function runTool(
  command: string,
  args: readonly string[],
  input: string,
  signal: AbortSignal | undefined,
): Promise<string> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(abortedError(signal));
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'pipe'], signal });
    const stderr: Buffer[] = [];
    child.stderr.on('data', (b: Buffer) => stderr.push(b));
    child.stdin.on('error', () => {}); // EPIPE when the tool exits early; its exit status tells why
    child.on('error', (err: NodeJS.ErrnoException) => {
      if (signal?.aborted) return reject(abortedError(signal));
      reject(notRun(command, err));
    });
    child.on('close', (code, killedBy) => {
      const said = Buffer.concat(stderr).toString().trim();
      if (signal?.aborted) return reject(abortedError(signal));
      if (code === 0) return resolve(said);
      reject(failed(command, args, code ?? killedBy, said));
    });
    child.stdin.end(input);
  });
}

/**
 * runTool for the unpack worker thread, whose event loop only serves this layer: waiting
 * synchronously costs nothing there.
 */
export function runToolSync(command: string, args: readonly string[], input: string): string {
  const result = spawnSync(command, args, { input, stdio: ['pipe', 'ignore', 'pipe'] });
  if (result.error) throw notRun(command, result.error as NodeJS.ErrnoException);
  const said = result.stderr.toString().trim();
  if (result.status !== 0) throw failed(command, args, result.status ?? result.signal, said);
  return said;
}

function notRun(command: string, err: NodeJS.ErrnoException): UnpackError {
  const why = err.code === 'ENOENT' ? `${command} is not installed` : err.message;
  return new UnpackError('SNAPSHOTTER_TOOL_FAILED', `could not run ${command}: ${why}`, { cause: err });
}

function failed(command: string, args: readonly string[], status: unknown, said: string): UnpackError {
  return new UnpackError(
    'SNAPSHOTTER_TOOL_FAILED',
    `${command} ${args.join(' ')} exited with ${String(status)}: ${said || '(no message)'}`,
  );
}
