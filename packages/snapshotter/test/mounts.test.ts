import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { mountsFor } from '../src/mounts.js';

const opts = { indexOff: true, userxattr: false };

describe('mountsFor (containerd overlay conventions)', () => {
  it('binds a base snapshot rw when active and ro as a view', () => {
    const plan = { upperDir: '/r/snapshots/1/fs', workDir: '/r/snapshots/1/work', parentDirs: [] };
    expect(mountsFor({ ...plan, kind: 'active' }, opts)).toEqual([
      { type: 'bind', source: '/r/snapshots/1/fs', target: '', options: ['rw', 'rbind'] },
    ]);
    expect(mountsFor({ ...plan, kind: 'view' }, opts)).toEqual([
      { type: 'bind', source: '/r/snapshots/1/fs', target: '', options: ['ro', 'rbind'] },
    ]);
  });

  it('binds the single parent read-only for a view of one layer', () => {
    expect(
      mountsFor({ kind: 'view', upperDir: '/u', workDir: '/w', parentDirs: ['/r/snapshots/1/fs'] }, opts),
    ).toEqual([{ type: 'bind', source: '/r/snapshots/1/fs', target: '', options: ['ro', 'rbind'] }]);
  });

  it('overlays an active snapshot: index=off, workdir, upperdir, lowerdir nearest parent first', () => {
    expect(
      mountsFor({ kind: 'active', upperDir: '/u', workDir: '/w', parentDirs: ['/p2', '/p1'] }, opts),
    ).toEqual([
      {
        type: 'overlay',
        source: 'overlay',
        target: '',
        options: ['index=off', 'workdir=/w', 'upperdir=/u', 'lowerdir=/p2:/p1'],
      },
    ]);
    expect(
      mountsFor(
        { kind: 'active', upperDir: '/u', workDir: '/w', parentDirs: ['/p1'] },
        { indexOff: false, userxattr: true },
      ),
    ).toEqual([
      {
        type: 'overlay',
        source: 'overlay',
        target: '',
        options: ['userxattr', 'workdir=/w', 'upperdir=/u', 'lowerdir=/p1'],
      },
    ]);
  });

  it('never writes into a parent and keeps the parent order', () => {
    fc.assert(
      fc.property(
        fc.constantFrom('active' as const, 'view' as const),
        fc.uniqueArray(
          fc.integer({ min: 1, max: 1000 }).map((n) => `/r/snapshots/${n}/fs`),
          { minLength: 1, maxLength: 12 },
        ),
        fc.boolean(),
        (kind, parentDirs, indexOff) => {
          const m = mountsFor(
            { kind, upperDir: '/r/snapshots/0/fs', workDir: '/r/snapshots/0/work', parentDirs },
            { indexOff, userxattr: false },
          )[0]!;
          expect(m).toBeDefined();
          if (m.type === 'bind') {
            expect(kind === 'view' && parentDirs.length === 1).toBe(true);
            expect(m.options).toEqual(['ro', 'rbind']);
            return;
          }
          const lower = m.options.find((o) => o.startsWith('lowerdir='))!;
          expect(lower.slice('lowerdir='.length).split(':')).toEqual(parentDirs);
          expect(m.options.some((o) => o.startsWith('upperdir='))).toBe(kind === 'active');
          expect(m.options.includes('index=off')).toBe(indexOff);
          expect(m.options[m.options.length - 1]).toBe(lower);
        },
      ),
    );
  });
});
