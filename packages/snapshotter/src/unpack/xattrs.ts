import { writeFileSync } from 'node:fs';
import { hasCode } from '@soci-ts/errors';
import type { FileMetadata } from '@soci-ts/ztoc';
import { runToolSync } from './run-tool.js';

export const PAX_XATTR_PREFIX = 'SCHILY.xattr.';
/** Overlayfs reads these as its own metadata (opaque dirs, redirects, metacopy): only whiteout conversion may set them. */
const OVERLAY_NAMESPACES = ['trusted.overlay.', 'user.overlay.'];

/** Extended attributes of a file, name -> value (values as raw bytes). */
export type Xattrs = Map<string, Uint8Array>;

/**
 * The xattrs a tar entry carries as `SCHILY.xattr.<name>` PAX records (GNU tar --xattrs, Go,
 * BuildKit). Overlay-internal names are left out and listed in `dropped`; `damaged` lists
 * names whose value was not UTF-8 and must be read back as bytes (see rawPaxValue).
 */
export function entryXattrs(entry: FileMetadata): { xattrs: Xattrs; dropped: string[]; damaged: string[] } {
  const xattrs: Xattrs = new Map();
  const dropped: string[] = [];
  const damaged: string[] = [];
  for (const [key, value] of Object.entries(entry.xattrs)) {
    if (!key.startsWith(PAX_XATTR_PREFIX)) continue;
    const name = key.slice(PAX_XATTR_PREFIX.length);
    if (!name) continue;
    if (OVERLAY_NAMESPACES.some((ns) => name.startsWith(ns))) dropped.push(name);
    else xattrs.set(name, Buffer.from(value, 'utf8'));
    // U+FFFD: the value held bytes that are not UTF-8 (binary), which the tar parser replaced.
    if (value.includes('\uFFFD') && xattrs.has(name)) damaged.push(name);
  }
  return { xattrs, dropped, damaged };
}

/**
 * Sets the xattrs of many files with one `setfattr --restore` spawn (the `getfattr --dump`
 * format). `-h` sets them on a symlink itself, never on what it points to.
 * Strict: any failure throws TOOL_FAILED. Lenient: failures come back as messages, as GNU tar
 * and containerd only warn when a file system refuses an xattr from a layer.
 */
export function restoreXattrs(
  files: ReadonlyMap<string, Xattrs>,
  dumpPath: string,
  mode: 'strict' | 'lenient',
): string[] {
  if (files.size === 0) return [];
  writeFileSync(dumpPath, xattrDump(files), { mode: 0o600 });
  try {
    runToolSync('setfattr', ['-h', `--restore=${dumpPath}`], '');
    return [];
  } catch (err) {
    if (mode === 'strict' || !hasCode(err, 'SNAPSHOTTER_TOOL_FAILED')) throw err;
    return [(err as Error).message];
  }
}

/** `getfattr --dump` text: `# file: <path>` then `<name>=0x<hex>` lines, a blank line per file. */
export function xattrDump(files: ReadonlyMap<string, Xattrs>): string {
  const lines: string[] = [];
  for (const [path, xattrs] of files) {
    if (xattrs.size === 0) continue;
    lines.push(`# file: ${escapeText(path)}`);
    for (const [name, value] of xattrs) {
      lines.push(`${escapeText(name)}=${value.length ? `0x${Buffer.from(value).toString('hex')}` : '""'}`);
    }
    lines.push('');
  }
  return `${lines.join('\n')}\n`;
}

/**
 * setfattr reads `\ooo` octal escapes in paths and names (attr's unquote). Every byte outside
 * printable ASCII, plus space, `=` and `\`, is escaped so that a name can neither end the line
 * nor the name early.
 */
function escapeText(text: string): string {
  let out = '';
  for (const byte of Buffer.from(text, 'utf8')) {
    const plain = byte > 0x20 && byte < 0x7f && byte !== 0x3d && byte !== 0x5c;
    out += plain ? String.fromCharCode(byte) : `\\${byte.toString(8).padStart(3, '0')}`;
  }
  return out;
}
