import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  decodeState,
  encodeState,
  MetadataStore,
  MetadataStoreError,
  type StoreState,
} from '../src/metadata-store.js';
import { spawnTs, withTempDir } from './helpers.js';

const record = (name: string, id: string) => ({
  id,
  name,
  kind: 'active' as const,
  parent: '',
  labels: {},
  created: '2024-01-01T00:00:00.000Z',
  updated: '2024-01-01T00:00:00.000Z',
});

describe('MetadataStore', () => {
  it('persists transactions and reloads them', async () => {
    await withTempDir(async (dir) => {
      const a = await MetadataStore.open(dir);
      await a.transaction((d) => {
        d.snapshots.x = record('x', '1');
        d.nextId = 2;
      });
      const b = await MetadataStore.open(dir);
      expect(b.get('x')).toEqual(record('x', '1'));
      expect(b.current.nextId).toBe(2);
    });
  });

  it('keeps the old state when a transaction throws', async () => {
    await withTempDir(async (dir) => {
      const s = await MetadataStore.open(dir);
      await s.transaction((d) => {
        d.snapshots.x = record('x', '1');
      });
      await expect(
        s.transaction((d) => {
          delete d.snapshots.x;
          d.snapshots.y = record('y', '2');
          throw new Error('boom');
        }),
      ).rejects.toThrow('boom');
      expect(Object.keys(s.current.snapshots)).toEqual(['x']);
      expect(Object.keys((await MetadataStore.open(dir)).current.snapshots)).toEqual(['x']);
    });
  });

  it('runs concurrent transactions one after another', async () => {
    await withTempDir(async (dir) => {
      const s = await MetadataStore.open(dir);
      await Promise.all(
        Array.from({ length: 20 }, () =>
          s.transaction(async (d) => {
            const n = d.nextId;
            await new Promise((r) => setTimeout(r, 1));
            d.snapshots[`k${n}`] = record(`k${n}`, String(n));
            d.nextId = n + 1;
          }),
        ),
      );
      expect(s.current.nextId).toBe(21);
      expect((await MetadataStore.open(dir)).all()).toHaveLength(20);
    });
  });

  it('ignores and removes a half-written temporary file', async () => {
    await withTempDir(async (dir) => {
      const s = await MetadataStore.open(dir);
      await s.transaction((d) => {
        d.snapshots.x = record('x', '1');
      });
      const next = encodeState({ nextId: 9, snapshots: {} });
      await writeFile(join(dir, 'metadata.json.tmp-1-2'), next.slice(0, next.length / 2));
      const reopened = await MetadataStore.open(dir);
      expect(Object.keys(reopened.current.snapshots)).toEqual(['x']);
      expect((await readdir(dir)).filter((f) => f.includes('.tmp-'))).toEqual([]);
    });
  });

  it('refuses a damaged metadata file instead of reading part of it', async () => {
    await withTempDir(async (dir) => {
      const s = await MetadataStore.open(dir);
      await s.transaction((d) => {
        d.snapshots.x = record('x', '1');
      });
      const text = await readFile(join(dir, 'metadata.json'), 'utf8');
      await writeFile(join(dir, 'metadata.json'), text.replace('"x"', '"y"'));
      await expect(MetadataStore.open(dir)).rejects.toMatchObject({ code: 'SNAPSHOTTER_METADATA_CORRUPT' });
    });
  });

  it('detects every truncation of an encoded state', () => {
    const arbState: fc.Arbitrary<StoreState> = fc.record({
      nextId: fc.nat(),
      snapshots: fc.dictionary(
        fc.string({ minLength: 1 }),
        fc.record({
          id: fc.nat().map(String),
          name: fc.string(),
          kind: fc.constantFrom('view', 'active', 'committed' as const),
          parent: fc.string(),
          labels: fc.dictionary(fc.string(), fc.string()),
          created: fc.constant('2024-01-01T00:00:00.000Z'),
          updated: fc.constant('2024-01-01T00:00:00.000Z'),
        }),
      ),
    });
    fc.assert(
      fc.property(arbState, fc.double({ min: 0, max: 1, noNaN: true }), (state, frac) => {
        const text = encodeState(state);
        expect(decodeState(text, 'f')).toEqual(JSON.parse(JSON.stringify(state)));
        const cut = Math.floor(frac * (text.trimEnd().length - 1));
        expect(() => decodeState(text.slice(0, cut), 'f')).toThrow(MetadataStoreError);
      }),
    );
  });

  it('survives kill -9 at random points: always a complete, recent state', async () => {
    await withTempDir(async (dir) => {
      for (let round = 0; round < 4; round++) {
        const writer = spawnTs('test/fixtures/store-writer.ts', [dir]);
        // vite-node needs about a second to start; kill somewhere in the writing phase.
        await new Promise<void>((resolve) => {
          const onData = () => {
            writer.child.stdout.off('data', onData);
            setTimeout(() => {
              writer.child.kill('SIGKILL');
              resolve();
            }, Math.random() * 300);
          };
          writer.child.stdout.on('data', onData);
        });
        const run = await writer.done;
        expect(run.signal).toBe('SIGKILL');
        const printed = run.stdout.trim().split('\n').filter(Boolean).map(Number);
        const lastDurable = printed[printed.length - 1]!;
        const s = await MetadataStore.open(dir);
        const n = s.current.nextId - 1;
        // Everything reported durable is there; at most one more commit landed unreported.
        expect(n === lastDurable || n === lastDurable + 1).toBe(true);
        expect(s.all()).toHaveLength(n + 1);
        expect(s.get('latest')?.id).toBe(String(n));
        for (let i = 1; i <= n; i++) expect(s.get(`k${i}`)?.parent).toBe(i > 1 ? `k${i - 1}` : '');
      }
    });
  }, 120_000);
});
