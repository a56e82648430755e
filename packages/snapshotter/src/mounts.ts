import type { SnapshotKind } from './metadata-store.js';

/** containerd's Mount message: the arguments of one mount(2) call. */
export interface Mount {
  type: string;
  source: string;
  target: string;
  options: string[];
}

export interface MountOptions {
  /** Add `index=off` (when the kernel's overlay module has the `index` parameter). */
  indexOff: boolean;
  /** Add `userxattr` (overlay inside a user namespace, kernel >= 5.11). */
  userxattr: boolean;
}

export interface MountPlan {
  kind: SnapshotKind;
  /** Directory of the snapshot's own layer (its `fs`). */
  upperDir: string;
  /** Overlay work directory (only used for active snapshots). */
  workDir: string;
  /** `fs` directories of the parent chain, nearest parent first. */
  parentDirs: readonly string[];
}

/**
 * The mounts containerd must perform to use a snapshot, following containerd's overlay
 * snapshotter: no parent -> bind mount of the snapshot's own directory (rw for active, ro for a
 * view); a view of one layer -> read-only bind of that layer; otherwise overlay with lowerdir =
 * the parent chain, nearest first, plus upperdir/workdir for an active snapshot.
 */
export function mountsFor(plan: MountPlan, opts: MountOptions): Mount[] {
  if (plan.parentDirs.length === 0) {
    const mode = plan.kind === 'view' ? 'ro' : 'rw';
    return [{ type: 'bind', source: plan.upperDir, target: '', options: [mode, 'rbind'] }];
  }
  const options: string[] = [];
  if (opts.indexOff) options.push('index=off');
  if (opts.userxattr) options.push('userxattr');
  if (plan.kind === 'active') {
    options.push(`workdir=${plan.workDir}`, `upperdir=${plan.upperDir}`);
  } else if (plan.parentDirs.length === 1) {
    return [{ type: 'bind', source: plan.parentDirs[0]!, target: '', options: ['ro', 'rbind'] }];
  }
  options.push(`lowerdir=${plan.parentDirs.join(':')}`);
  return [{ type: 'overlay', source: 'overlay', target: '', options }];
}
