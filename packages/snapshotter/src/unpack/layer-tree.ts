import type { Xattrs } from './xattrs.js';

/** Owner, mode and times of a file, applied after its content. */
export interface Attributes {
  uid: number;
  gid: number;
  mode: number;
  atime: number;
  mtime: number;
}

/** A device node or fifo that exists only in the tree until the next batch creates it. */
export interface PendingSpecial extends Attributes {
  type: 'char' | 'block' | 'fifo';
  major: number;
  minor: number;
}

export type NodeKind = 'dir' | 'file' | 'symlink' | 'special';

/** One path of the layer being written, with the work still queued for it. */
export interface TreeNode {
  kind: NodeKind;
  children?: Map<string, TreeNode>;
  /** Directory attributes, set once all children are written. */
  attributes?: Attributes;
  xattrs?: Xattrs;
  /** Marked by a `.wh..wh..opq` entry: gets the overlay opaque xattr. */
  opaque?: boolean;
  /** Not yet created on disk (see PendingSpecial). */
  pending?: PendingSpecial;
}

/**
 * What this unpack has created below the root, as a tree. The root started empty and only this
 * unpack writes into it, so the tree is the truth about what is on disk: lookups cost no
 * syscall, and removing a subtree drops the work queued in it at once.
 */
export class LayerTree {
  readonly root: TreeNode = { kind: 'dir', children: new Map() };

  /** The node at `path` (`''` is the root), or undefined. */
  get(path: string): TreeNode | undefined {
    let node: TreeNode | undefined = this.root;
    if (path === '') return node;
    for (const part of path.split('/')) {
      node = node?.children?.get(part);
      if (!node) return undefined;
    }
    return node;
  }

  /** Records `node` at `path`, whose parent must be a directory in the tree. */
  set(path: string, node: TreeNode): TreeNode {
    const slash = path.lastIndexOf('/');
    const parent = this.get(slash < 0 ? '' : path.slice(0, slash));
    if (parent?.kind !== 'dir') throw new Error(`internal: parent of ${path} is not a directory`);
    parent.children!.set(path.slice(slash + 1), node);
    return node;
  }

  /** Forgets `path` and everything below it. */
  delete(path: string): void {
    const slash = path.lastIndexOf('/');
    this.get(slash < 0 ? '' : path.slice(0, slash))?.children?.delete(path.slice(slash + 1));
  }

  /**
   * Every node that has work queued (attributes, xattrs, the opaque mark) with its path, parents
   * before children. Plain files are not visited: a layer has far more of them than of anything
   * else, and building their paths would be most of the walk's cost.
   */
  withWork(): Array<[string, TreeNode]> {
    const found: Array<[string, TreeNode]> = [];
    const visit = (node: TreeNode, path: string) => {
      if (node.attributes || node.xattrs || node.opaque) found.push([path, node]);
      if (!node.children) return;
      for (const [name, child] of node.children) {
        if (child.children || child.attributes || child.xattrs || child.opaque) {
          visit(child, path ? `${path}/${name}` : name);
        }
      }
    };
    visit(this.root, '');
    return found;
  }
}
