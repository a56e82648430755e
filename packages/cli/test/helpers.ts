import { mkdtemp, readdir, readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative } from 'node:path';
import { bufferIo, main } from '../src/index.js';

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
  bytes: Buffer;
}

/** Runs `soci <args>` in-process. */
export async function soci(...args: string[]): Promise<CliRun> {
  const io = bufferIo();
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr, bytes: io.stdoutBytes };
}

/** Like soci() but fails the test with the CLI's stderr when the command fails. */
export async function sociOk(...args: string[]): Promise<CliRun> {
  const r = await soci(...args);
  if (r.code !== 0) throw new Error(`soci ${args.join(' ')} failed (${r.code}): ${r.stderr}`);
  return r;
}

export function tempRoot(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'soci-root-'));
}

/** Regular files under a directory, as image paths (`/a/b`), recursively. */
export async function regularFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (entry.isFile()) out.push(`/${relative(dir, join(entry.parentPath, entry.name))}`);
  }
  return out.sort();
}

export function readBytes(path: string): Promise<Buffer> {
  return readFile(path);
}
