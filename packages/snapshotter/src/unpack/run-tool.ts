import { spawn } from 'node:child_process';
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
      const why = err.code === 'ENOENT' ? `${command} is not installed` : err.message;
      reject(new UnpackError('TOOL_FAILED', `could not run ${command}: ${why}`, { cause: err }));
    });
    child.on('close', (code, killedBy) => {
      const said = Buffer.concat(stderr).toString().trim();
      if (signal?.aborted) return reject(abortedError(signal));
      if (code === 0) return resolve(said);
      reject(
        new UnpackError(
          'TOOL_FAILED',
          `${command} ${args.join(' ')} exited with ${code ?? killedBy}: ${said || '(no message)'}`,
        ),
      );
    });
    child.stdin.end(input);
  });
}
