import type { FileMetadata } from '@soci-ts/ztoc';
import { describe, expect, it } from 'vitest';
import { MergedView } from '../src/index.js';

function entry(name: string, type: FileMetadata['type'] = 'reg', linkname = ''): FileMetadata {
  return {
    name,
    type,
    linkname,
    uncompressedOffset: 0,
    uncompressedSize: 0,
    mode: 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    modTime: '1970-01-01T00:00:00Z',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
  };
}

const bottom = [
  entry('./etc/', 'dir'),
  entry('./etc/a'),
  entry('./etc/b'),
  entry('./data/', 'dir'),
  entry('./data/x'),
  entry('./keep/', 'dir'),
  entry('./keep/y'),
  entry('./dirfile/', 'dir'),
  entry('./dirfile/z'),
];
const top = [
  entry('./etc/', 'dir'),
  entry('./etc/.wh.a'),
  entry('./etc/b'),
  entry('./data/', 'dir'),
  entry('./data/.wh..wh..opq'),
  entry('./data/new'),
  entry('./dirfile'),
  entry('./link', 'symlink', '/keep'),
  entry('./rel', 'symlink', 'etc/../keep/y'),
  entry('./loop', 'symlink', 'loop'),
];
const view = new MergedView([bottom, top]);

describe('MergedView', () => {
  it('topmost layer wins, lower files show through', () => {
    expect(view.lookup('/etc/b')?.layer).toBe(1);
    expect(view.lookup('keep/y')?.layer).toBe(0);
  });
  it('whiteouts, opaque directories and files over directories hide lower entries', () => {
    expect(view.lookup('etc/a')).toBeUndefined();
    expect(view.lookup('data/x')).toBeUndefined();
    expect(view.lookup('data/new')?.layer).toBe(1);
    expect(view.lookup('dirfile/z')).toBeUndefined();
  });
  it('follows absolute and relative symlinks, and stops on loops', () => {
    expect(view.resolve('/link/y')).toMatchObject({ layer: 0, path: 'keep/y' });
    expect(view.resolve('rel')).toMatchObject({ layer: 0, path: 'keep/y' });
    expect(() => view.resolve('loop')).toThrow(/too many levels/);
    expect(() => view.resolve('etc/a')).toThrow(/no such file/);
  });
});
