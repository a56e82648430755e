import { runToolSync } from './run-tool.js';

/** A device node or fifo to create (Node cannot: mknod(2) has no binding). */
export interface SpecialFile {
  path: string;
  type: 'char' | 'block' | 'fifo';
  major: number;
  minor: number;
}

/**
 * Creates the files with one `xargs mknod` and one `xargs mkfifo` spawn (a layer may hold
 * thousands of whiteout devices; one Node spawn each would dominate the unpack). Paths go
 * NUL-separated through stdin, so any byte in a name is safe. Modes and owners are set by the
 * caller afterwards.
 */
export function createSpecialFiles(files: readonly SpecialFile[]): void {
  const devices = files.filter((f) => f.type !== 'fifo');
  const fifos = files.filter((f) => f.type === 'fifo');
  if (devices.length) {
    const args = devices.flatMap((d) => [
      d.path,
      d.type === 'char' ? 'c' : 'b',
      String(d.major),
      String(d.minor),
    ]);
    runToolSync('xargs', ['-0', '-n', '4', 'mknod', '--'], nulList(args));
  }
  if (fifos.length) {
    runToolSync('xargs', ['-0', 'mkfifo', '--'], nulList(fifos.map((f) => f.path)));
  }
}

function nulList(items: readonly string[]): string {
  return `${items.join('\0')}\0`;
}
