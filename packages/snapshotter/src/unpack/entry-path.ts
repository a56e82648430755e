import { UnpackError } from './errors.js';

const OPAQUE_MARKER = '.wh..wh..opq';
const WHITEOUT_PREFIX = '.wh.';
/** AUFS bookkeeping (`.wh..wh.plnk`, `.wh..wh.aufs`): not whiteouts, never written. */
const AUFS_META_PREFIX = '.wh..wh.';

/**
 * A tar entry name as a path relative to the layer root: leading `/` and `./` stripped, empty and
 * `.` components dropped, components joined by `/`; `''` is the root itself. A `..` component
 * (or a NUL byte) is UNSAFE_PATH: a layer may only write below its own root.
 */
export function layerPath(name: string, what: string): string {
  // Nearly every name is already plain (`usr/lib/x`, `etc/` for a directory): no split and join.
  const plain = name.length > 1 && name.endsWith('/') ? name.slice(0, -1) : name;
  if (!NEEDS_CLEANING.test(plain)) return plain;
  if (name.includes('\0')) throw unsafePath(what, name, 'contains a NUL byte');
  const parts: string[] = [];
  for (const part of name.split('/')) {
    if (part === '' || part === '.') continue;
    if (part === '..') throw unsafePath(what, name, 'has a ".." component');
    parts.push(part);
  }
  return parts.join('/');
}

/** An empty, `.` or `..` component (a leading, doubled or trailing `/` makes an empty one), or a NUL. */
const NEEDS_CLEANING = /(?:^|\/)(?:\.\.?)?(?:\/|$)|\0/;

export function unsafePath(what: string, name: string, why: string): UnpackError {
  return new UnpackError(
    'SNAPSHOTTER_UNSAFE_PATH',
    `${what} ${JSON.stringify(name)} ${why}; a layer may only write below its own root, the layer is rejected`,
  );
}

export function parentOf(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '' : path.slice(0, slash);
}

/** What an entry at `path` means for an overlayfs layer. */
export type OverlayRole =
  | { kind: 'plain' }
  /** `D/.wh..wh..opq`: directory D hides everything below it in lower layers. */
  | { kind: 'opaque'; dir: string }
  /** `D/.wh.<name>`: `D/<name>` of lower layers is deleted. */
  | { kind: 'whiteout'; target: string }
  | { kind: 'aufs-meta' };

export function overlayRole(path: string, name: string): OverlayRole {
  const dir = parentOf(path);
  const base = dir ? path.slice(dir.length + 1) : path;
  if (!base.startsWith(WHITEOUT_PREFIX)) return { kind: 'plain' };
  if (base === OPAQUE_MARKER) return { kind: 'opaque', dir };
  if (base.startsWith(AUFS_META_PREFIX)) return { kind: 'aufs-meta' };
  const hidden = base.slice(WHITEOUT_PREFIX.length);
  if (hidden === '' || hidden === '.' || hidden === '..') {
    throw unsafePath('whiteout entry', name, `names no file ("${hidden}")`);
  }
  return { kind: 'whiteout', target: dir ? `${dir}/${hidden}` : hidden };
}
