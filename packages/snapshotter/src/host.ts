import { execFile } from 'node:child_process';
import { lstat, readdir, readFile, statfs } from 'node:fs/promises';
import { release } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { SnapshotUsage } from './metadata-store.js';
import type { MountOptions } from './mounts.js';

const execFileAsync = promisify(execFile);
const TMPFS_MAGIC = 0x01021994;

/** True when this process runs in a user namespace that does not map the whole uid range. */
async function runningInUserNamespace(): Promise<boolean> {
  try {
    const map = (await readFile('/proc/self/uid_map', 'utf8')).trim().split(/\s+/);
    return !(map[0] === '0' && map[1] === '0' && map[2] === '4294967295');
  } catch {
    return false;
  }
}

function kernelAtLeast(major: number, minor: number): boolean {
  const [maj = 0, min = 0] = release().split(/[.-]/).map(Number);
  return maj > major || (maj === major && min >= minor);
}

/** The overlay options containerd's overlay snapshotter would pick on this host for `root`. */
export async function detectMountOptions(root: string): Promise<MountOptions> {
  let indexOff = false;
  try {
    await lstat('/sys/module/overlay/parameters/index');
    indexOff = true;
  } catch {}
  let userxattr = false;
  if ((await runningInUserNamespace()) && kernelAtLeast(5, 11)) {
    const fs = await statfs(root);
    userxattr = fs.type !== TMPFS_MAGIC;
  }
  return { indexOff, userxattr };
}

/**
 * Disk usage of a directory tree like containerd's fs.DiskUsage: allocated blocks (512-byte
 * units) and inodes, each hard-linked inode counted once. Does not cross into mounts below it.
 */
export async function diskUsage(dir: string): Promise<SnapshotUsage> {
  const seen = new Set<string>();
  let size = 0;
  const top = await lstat(dir, { bigint: true });
  const walk = async (path: string): Promise<void> => {
    const st = await lstat(path, { bigint: true });
    if (st.dev !== top.dev) return;
    const inode = `${st.ino}`;
    if (!seen.has(inode)) {
      seen.add(inode);
      size += Number(st.blocks) * 512;
    }
    if (st.isDirectory()) {
      for (const entry of await readdir(path)) await walk(join(path, entry));
    }
  };
  await walk(dir);
  return { size, inodes: seen.size };
}

/** Mount points at or below `dir`, deepest first (from /proc/self/mountinfo). */
export async function mountPointsUnder(dir: string): Promise<string[]> {
  let info: string;
  try {
    info = await readFile('/proc/self/mountinfo', 'utf8');
  } catch {
    return [];
  }
  const prefix = dir.endsWith('/') ? dir : `${dir}/`;
  const points = info
    .split('\n')
    .map((line) => line.split(' ')[4])
    .filter((p): p is string => p !== undefined)
    .map((p) => p.replace(/\\([0-7]{3})/g, (_, o: string) => String.fromCharCode(Number.parseInt(o, 8))))
    .filter((p) => p === dir || p.startsWith(prefix));
  return [...new Set(points)].sort((a, b) => b.length - a.length);
}

/** Detaches every mount at or below `dir` (lazy unmount, so a dead FUSE server cannot block it). */
export async function unmountAllUnder(dir: string): Promise<void> {
  for (const point of await mountPointsUnder(dir)) {
    await execFileAsync('umount', ['-l', point]).catch(() => undefined);
  }
}
