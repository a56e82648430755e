import { spawn, spawnSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';
import { resolve } from 'node:path';

/** True when `mountpoint` is a mount point in this process's mount namespace. */
export async function isMounted(mountpoint: string): Promise<boolean> {
  return (await mountDevice(mountpoint)) !== undefined;
}

/**
 * The device minor of the mount on top at `mountpoint` (for FUSE: its connection number under
 * /sys/fs/fuse/connections), from the mount table: no stat, which a FUSE mount would have to
 * answer itself.
 */
export async function mountDevice(mountpoint: string): Promise<{ major: number; minor: number } | undefined> {
  const target = resolve(mountpoint);
  const table = await readFile('/proc/self/mountinfo', 'utf8').catch(() => '');
  let found: { major: number; minor: number } | undefined;
  for (const line of table.split('\n')) {
    const fields = line.split(' ');
    if (fields[4] === undefined || unescapeMountField(fields[4]) !== target) continue;
    const [major, minor] = (fields[2] ?? '').split(':').map(Number);
    found = { major: major ?? 0, minor: minor ?? 0 };
  }
  return found;
}

/** mountinfo escapes space, tab, newline and backslash as octal (`\040`). */
function unescapeMountField(field: string): string {
  return field.replace(/\\([0-7]{3})/g, (_, oct: string) => String.fromCharCode(Number.parseInt(oct, 8)));
}

/**
 * Runs a system tool (mount, umount, fusermount); `fd`, when given, becomes its fd 3. Rejects
 * with its stderr, or when it takes longer than `timeoutMs`.
 */
export function runTool(
  command: string,
  args: readonly string[],
  options: { fd?: number; timeoutMs?: number } = {},
): Promise<void> {
  return new Promise((ok, fail) => {
    const { fd, timeoutMs = 30_000 } = options;
    const child = spawn(command, args, {
      stdio: fd === undefined ? ['ignore', 'ignore', 'pipe'] : ['ignore', 'ignore', 'pipe', fd],
      timeout: timeoutMs,
    });
    let stderr = '';
    child.stderr?.on('data', (d: Buffer) => {
      stderr += d.toString();
    });
    child.once('error', fail);
    child.once('close', (code, signal) =>
      code === 0
        ? ok()
        : fail(new Error(`${command} ${args.join(' ')} failed (${code ?? signal}): ${stderr.trim()}`)),
    );
  });
}

const succeeds = (command: string, args: readonly string[]) =>
  runTool(command, args).then(
    () => true,
    () => false,
  );

/**
 * Detaches a FUSE mount: `fusermount -u -z` (lazy, works while files are open), then
 * `umount -l` as the fallback for mounts fusermount will not touch. Resolves true when the
 * mountpoint is free afterwards.
 */
export async function forceUnmount(mountpoint: string): Promise<boolean> {
  if (!(await isMounted(mountpoint))) return true;
  await succeeds('fusermount', ['-u', '-z', mountpoint]);
  if (!(await isMounted(mountpoint))) return true;
  await succeeds('umount', ['-l', mountpoint]);
  return !(await isMounted(mountpoint));
}

/** Synchronous variant for `process.on('exit')`, where no callback runs any more. */
export function forceUnmountSync(mountpoint: string): void {
  const r = spawnSync('fusermount', ['-u', '-z', mountpoint], { stdio: 'ignore', timeout: 10_000 });
  if (r.status !== 0) spawnSync('umount', ['-l', mountpoint], { stdio: 'ignore', timeout: 10_000 });
}
