// The file tree of a zTOC is built in time linear in its entries' names, without recursion: a
// hostile zTOC with a very deep path must neither stall the event loop nor overflow the stack.
import type { FileMetadata } from '@soci-ts/ztoc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { FileTree } from '../src/index.js';

function entry(
  name: string,
  type: FileMetadata['type'] = 'reg',
  extra: Partial<FileMetadata> = {},
): FileMetadata {
  return {
    name,
    type,
    uncompressedOffset: 0,
    uncompressedSize: 0,
    linkname: '',
    mode: type === 'dir' ? 0o755 : 0o644,
    uid: 0,
    gid: 0,
    uname: '',
    gname: '',
    modTime: '2024-01-01T00:00:00Z',
    devmajor: 0,
    devminor: 0,
    xattrs: {},
    ...extra,
  };
}

describe('FileTree on hostile shapes', () => {
  it('builds a 32 KB path of 16,384 components quickly and finds its file', () => {
    const name = `${'a/'.repeat(16_383)}f`;
    expect(name.length).toBeGreaterThan(32_000);
    const started = performance.now();
    const tree = new FileTree([entry(name)]);
    const ms = performance.now() - started;
    // Quadratic building took ~2.7 s for this; linear is a few ms. Generous for a loaded machine.
    expect(ms).toBeLessThan(500);
    expect(tree.lookup(`/${name}`)?.kind).toBe('file');
    expect(tree.lookup(`/${'a/'.repeat(100)}`)?.kind).toBe('dir');
    expect(tree.lookup(`/${'a/'.repeat(16_384)}f`)).toBeUndefined();
  });

  it('replaces a 20,000-deep directory chain without overflowing the stack', () => {
    const deep = `${'d/'.repeat(20_000)}leaf`;
    const tree = new FileTree([entry(deep), entry('d', 'reg')]);
    expect(tree.lookup('/d')?.kind).toBe('file');
    expect(tree.lookup('/d/d')).toBeUndefined();
    expect([...tree.walk()].map(([p]) => p)).toEqual(['/', '/d']);
  });

  it('walks a 20,000-deep tree without recursion', () => {
    const tree = new FileTree([entry(`${'x/'.repeat(20_000)}leaf`)]);
    expect([...tree.walk()]).toHaveLength(20_002);
  });
});

describe('FileTree lookup', () => {
  it('finds every entry by its path, and nothing else (property)', () => {
    const segment = fc.stringMatching(/^[a-c]{1,2}$/);
    fc.assert(
      fc.property(fc.array(fc.array(segment, { minLength: 1, maxLength: 5 }), { maxLength: 30 }), (paths) => {
        // A later entry replaces whatever was at its path (and a file in the middle of a path is
        // replaced by the directory the longer path needs), as tar -x does: compute what remains.
        const tree = new FileTree(paths.map((p) => entry(p.join('/'))));
        const expected = new Map<string, 'file' | 'dir'>();
        for (const p of paths) {
          for (let i = 1; i < p.length; i++) {
            const dir = `/${p.slice(0, i).join('/')}`;
            expected.set(dir, 'dir');
            for (const k of [...expected.keys()])
              if (k.startsWith(`${dir}/`) && expected.get(dir) !== 'dir') expected.delete(k);
          }
          const path = `/${p.join('/')}`;
          for (const k of [...expected.keys()]) if (k.startsWith(`${path}/`)) expected.delete(k);
          expected.set(path, 'file');
        }
        for (const [path, kind] of expected) expect(tree.lookup(path)?.kind, path).toBe(kind);
        const walked = new Map([...tree.walk()].map(([p, i]) => [p, i.kind]));
        walked.delete('/');
        expect(walked).toEqual(expected);
        expect(tree.lookup('/nope')).toBeUndefined();
      }),
      { numRuns: 200 },
    );
  });
});
