import { mkdir, readdir, stat, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { LABEL } from '@soci-ts/containerd-client';
import { describe, expect, it, vi } from 'vitest';
import { isSnapshotError, type SnapshotErrorCode } from '../src/errors.js';
import type {
  RemoteLayerSource,
  RemotePrepareRequest,
  RemotePrepareResult,
  RemoteRestoreRequest,
  UnmountReason,
} from '../src/remote.js';
import type { RemoteOutcome } from '../src/remote-snapshots.js';
import { Snapshotter } from '../src/snapshotter.js';
import { silentLogger, withTempDir } from './helpers.js';

const open = (root: string, extra: Partial<Parameters<typeof Snapshotter.open>[0]> = {}) =>
  Snapshotter.open({
    root,
    logger: silentLogger,
    mountOptions: { indexOff: true, userxattr: false },
    ...extra,
  });

async function expectCode(p: Promise<unknown> | (() => unknown), code: SnapshotErrorCode, text?: string) {
  let error: unknown;
  try {
    await (typeof p === 'function' ? p() : p);
  } catch (err) {
    error = err;
  }
  expect(isSnapshotError(error, code), `expected ${code}, got ${String(error)}`).toBe(true);
  if (text) expect((error as Error).message).toContain(text);
}

/** A remote source that "mounts" by writing a marker file, recording every call. */
class FakeRemote implements RemoteLayerSource {
  calls: RemotePrepareRequest[] = [];
  unmounted: string[] = [];
  unmountReasons: UnmountReason[] = [];
  restoreCalls: string[] = [];
  /** Names of the snapshots `restored` was told about, per call. */
  restoredLists: string[][] = [];
  constructor(private readonly answer: (req: RemotePrepareRequest) => Promise<RemotePrepareResult>) {}
  async prepareRemote(req: RemotePrepareRequest) {
    this.calls.push(req);
    const result = await this.answer(req);
    if (result === 'mounted') await writeFile(join(req.mountpoint, 'remote-marker'), req.target);
    return result;
  }
  async restore(req: RemoteRestoreRequest) {
    this.restoreCalls.push(req.name);
  }
  async unmount(mountpoint: string, why: UnmountReason) {
    this.unmounted.push(mountpoint);
    this.unmountReasons.push(why);
  }
  async restored(snapshots: readonly { labels: Readonly<Record<string, string>> }[]) {
    this.restoredLists.push(snapshots.map((s) => s.labels[LABEL.snapshotRef] ?? '?'));
  }
}

describe('Snapshotter (overlay semantics)', () => {
  it('prepares, commits and stacks layers with the right kinds and parents', async () => {
    await withTempDir(async (root) => {
      const sn = await open(root);
      const m1 = await sn.prepare('ns/1/a', '');
      expect(m1[0]!.type).toBe('bind');
      await writeFile(join(m1[0]!.source, 'file'), 'x'.repeat(10_000));
      await sn.commit('l1', 'ns/1/a', { keep: 'yes' });
      expect(sn.stat('l1')).toMatchObject({ kind: 'committed', parent: '', labels: { keep: 'yes' } });
      await expectCode(() => sn.stat('ns/1/a'), 'SNAPSHOTTER_NOT_FOUND');
      const u = await sn.usage('l1');
      expect(u.size).toBeGreaterThanOrEqual(10_000);
      expect(u.inodes).toBe(2);

      await sn.prepare('ns/2/b', 'l1');
      await sn.commit('l2', 'ns/2/b');
      const m3 = await sn.prepare('ns/3/c', 'l2');
      const l1 = join(root, 'snapshots', '1', 'fs');
      const l2 = join(root, 'snapshots', '2', 'fs');
      expect(m3).toEqual([
        {
          type: 'overlay',
          source: 'overlay',
          target: '',
          options: [
            'index=off',
            `workdir=${root}/snapshots/3/work`,
            `upperdir=${root}/snapshots/3/fs`,
            `lowerdir=${l2}:${l1}`,
          ],
        },
      ]);
      expect(await sn.mounts('ns/3/c')).toEqual(m3);
      const view = await sn.view('ns/4/v', 'l2');
      expect(view[0]!.options).toEqual(['index=off', `lowerdir=${l2}:${l1}`]);
      expect(sn.stat('ns/4/v').kind).toBe('view');
      expect((await stat(join(root, 'snapshots', '4'))).isDirectory()).toBe(true);
      await expect(readdir(join(root, 'snapshots', '4'))).resolves.toEqual(['fs']);
      expect(sn.list(['kind==committed']).map((i) => i.name)).toEqual(['l1', 'l2']);
      expect(sn.list(['parent==l1', 'name==ns/4/v']).map((i) => i.name)).toEqual(['l2', 'ns/4/v']);
      expect(sn.list(['labels.keep==yes']).map((i) => i.name)).toEqual(['l1']);
      expect(sn.countByKind()).toEqual({ active: 1, view: 1, committed: 2 });
    });
  });

  it('answers with containerd error classes', async () => {
    await withTempDir(async (root) => {
      const sn = await open(root);
      await sn.prepare('a', '');
      await expectCode(sn.prepare('a', ''), 'SNAPSHOTTER_ALREADY_EXISTS');
      await expectCode(sn.prepare('b', 'missing'), 'SNAPSHOTTER_NOT_FOUND');
      await expectCode(sn.prepare('b', 'a'), 'SNAPSHOTTER_INVALID_ARGUMENT', 'is not committed');
      await expectCode(sn.commit('x', 'missing'), 'SNAPSHOTTER_NOT_FOUND');
      await sn.commit('c', 'a');
      await expectCode(sn.commit('c', 'c'), 'SNAPSHOTTER_ALREADY_EXISTS');
      await expectCode(() => sn.mounts('c'), 'SNAPSHOTTER_FAILED_PRECONDITION', 'not active or view');
      await sn.view('v', 'c');
      await expectCode(sn.commit('vv', 'v'), 'SNAPSHOTTER_FAILED_PRECONDITION', 'is not active');
      await expectCode(
        sn.remove('c'),
        'SNAPSHOTTER_FAILED_PRECONDITION',
        'cannot remove snapshot with child',
      );
      await expectCode(sn.remove('nope'), 'SNAPSHOTTER_NOT_FOUND');
      await expectCode(sn.prepare('big', '', { k: 'v'.repeat(4096) }), 'SNAPSHOTTER_INVALID_ARGUMENT');
      await expectCode(() => sn.list(['name==']), 'SNAPSHOTTER_INVALID_ARGUMENT');
      await expectCode(sn.update({ name: 'c', labels: {} }, ['parent']), 'SNAPSHOTTER_INVALID_ARGUMENT');
      await sn.remove('v');
      await sn.remove('c');
      expect(sn.list()).toEqual([]);
      expect(await readdir(join(root, 'snapshots'))).toEqual([]);
    });
  });

  it('updates labels by field mask like containerd', async () => {
    await withTempDir(async (root) => {
      const sn = await open(root);
      await sn.prepare('a', '', { x: '1', y: '2' });
      const before = sn.stat('a');
      await new Promise((r) => setTimeout(r, 5));
      expect((await sn.update({ name: 'a', labels: { x: '9', z: '3' } }, ['labels.x'])).labels).toEqual({
        x: '9',
        y: '2',
      });
      expect((await sn.update({ name: 'a', labels: {} }, ['labels.y'])).labels).toEqual({ x: '9' });
      expect((await sn.update({ name: 'a', labels: { q: '1' } }, [])).labels).toEqual({ q: '1' });
      const after = await sn.update({ name: 'a', labels: { r: '1' } }, ['labels']);
      expect(after.labels).toEqual({ r: '1' });
      expect(after.updated.getTime()).toBeGreaterThan(before.updated.getTime());
      expect(after.created).toEqual(before.created);
      await expectCode(sn.update({ name: 'zz', labels: {} }), 'SNAPSHOTTER_NOT_FOUND');
    });
  });

  it('keeps snapshots across a restart and removes half-created directories', async () => {
    await withTempDir(async (root) => {
      const sn = await open(root);
      await sn.prepare('a', '');
      await sn.commit('l1', 'a');
      await sn.prepare('b', 'l1');
      await sn.close();
      // What an interrupted Prepare or Remove leaves behind.
      await mkdir(join(root, 'snapshots', 'new-123', 'fs'), { recursive: true });
      await mkdir(join(root, 'snapshots', '77', 'fs'), { recursive: true });
      const again = await open(root);
      expect(again.list().map((i) => [i.name, i.kind])).toEqual([
        ['b', 'active'],
        ['l1', 'committed'],
      ]);
      expect((await readdir(join(root, 'snapshots'))).sort()).toEqual(['1', '2']);
      await again.prepare('c', 'l1');
      expect((await again.mounts('c'))[0]!.options).toContain(`upperdir=${root}/snapshots/3/fs`);
    });
  });
});

describe('Snapshotter remote flow', () => {
  const labels = (target: string) => ({
    [LABEL.snapshotRef]: target,
    'containerd.io/snapshot/cri.layer-digest': 'sha256:layer',
  });

  it('commits a mounted layer under the target and answers ALREADY_EXISTS', async () => {
    await withTempDir(async (root) => {
      const outcomes: RemoteOutcome[] = [];
      const remote = new FakeRemote(async () => 'mounted');
      const sn = await open(root, { remote, onRemoteOutcome: (o) => outcomes.push(o) });
      await expectCode(
        sn.prepare('ns/1/extract-1 sha256:t1', '', labels('sha256:t1')),
        'SNAPSHOTTER_ALREADY_EXISTS',
        'sha256:t1',
      );
      expect(remote.calls[0]).toMatchObject({
        key: 'ns/1/extract-1 sha256:t1',
        target: 'sha256:t1',
        parent: '',
      });
      expect(remote.calls[0]!.mountpoint).toBe(join(root, 'snapshots', '1', 'fs'));
      const info = sn.stat('sha256:t1');
      expect(info.kind).toBe('committed');
      expect(info.labels[LABEL.remote]).toBeDefined();
      expect(info.labels[LABEL.snapshotRef]).toBe('sha256:t1');
      await expectCode(() => sn.stat('ns/1/extract-1 sha256:t1'), 'SNAPSHOTTER_NOT_FOUND');
      // What containerd's metadata layer then looks up:
      expect(
        sn.list([`labels."containerd.io/snapshot.ref"==sha256:t1,parent==""`]).map((i) => i.name),
      ).toEqual(['sha256:t1']);
      // The next layer stacks on the remote one.
      await expectCode(
        sn.prepare('ns/2/extract-2 sha256:t2', 'sha256:t1', labels('sha256:t2')),
        'SNAPSHOTTER_ALREADY_EXISTS',
      );
      expect(remote.calls[1]!.parent).toBe('sha256:t1');
      // Preparing a target that exists does not ask the source again.
      await expectCode(
        sn.prepare('ns/3/extract-3 sha256:t1', '', labels('sha256:t1')),
        'SNAPSHOTTER_ALREADY_EXISTS',
      );
      expect(remote.calls).toHaveLength(2);
      expect(outcomes).toEqual(['mounted', 'mounted']);
      // Removal and shutdown unmount through the source.
      await sn.remove('sha256:t2');
      expect(remote.unmounted).toEqual([join(root, 'snapshots', '2', 'fs')]);
      await sn.close();
      expect(remote.unmounted).toEqual([
        join(root, 'snapshots', '2', 'fs'),
        join(root, 'snapshots', '1', 'fs'),
      ]);
      // Only the removal lets the source drop the layer's cached data.
      expect(remote.unmountReasons).toEqual(['snapshot-removed', 'shutdown']);
      const again = await open(root, { remote });
      await again.whenRestored();
      expect(remote.restoreCalls).toEqual(['sha256:t1']);
      // Told, once, of every remote snapshot there is: the source may drop the rest of its cache.
      expect(remote.restoredLists).toEqual([[], ['sha256:t1']]);
      await again.close();
    });
  });

  it('answers at once after a start and restores in the background, several at once; mounts over a restoring layer wait for it', async () => {
    await withTempDir(async (root) => {
      const first = await open(root, { remote: new FakeRemote(async () => 'mounted') });
      for (const t of ['sha256:r1', 'sha256:r2', 'sha256:r3', 'sha256:r4', 'sha256:r5']) {
        await expectCode(first.prepare(`x ${t}`, '', labels(t)), 'SNAPSHOTTER_ALREADY_EXISTS');
      }
      await first.close();

      // A source whose restores wait for the test to let them go.
      let inFlight = 0;
      let maxInFlight = 0;
      const gates = new Map<string, () => void>();
      const remote = new FakeRemote(async () => 'mounted');
      remote.restore = async (req: RemoteRestoreRequest) => {
        inFlight++;
        maxInFlight = Math.max(maxInFlight, inFlight);
        await new Promise<void>((resolve) => gates.set(req.name, resolve));
        inFlight--;
        if (req.name === 'sha256:r5') throw new Error('registry gone and nothing kept');
      };
      const sn = await open(root, { remote, mountTimeoutMs: 10_000 });
      // The daemon answers while restores hang.
      expect(sn.stat('sha256:r1').kind).toBe('committed');
      const mounts = sn.prepare('container-on-r1', 'sha256:r1');
      let answered = false;
      void mounts.then(() => {
        answered = true;
      });
      await new Promise((r) => setTimeout(r, 50));
      expect(answered).toBe(false); // waits for r1's mount: an empty lowerdir would show no files
      expect(maxInFlight).toBe(4);
      for (const name of ['sha256:r1', 'sha256:r2', 'sha256:r3', 'sha256:r4']) gates.get(name)!();
      expect((await mounts)[0]!.options.join(',')).toContain(join(root, 'snapshots'));
      await new Promise((r) => setTimeout(r, 10));
      gates.get('sha256:r5')!();
      await sn.whenRestored();
      // A layer that could not be restored fails the calls that need it, with what to do.
      await expectCode(
        sn.prepare('container-on-r5', 'sha256:r5'),
        'SNAPSHOTTER_UNAVAILABLE',
        'pull it again',
      );
      await sn.close();
    });
  });

  it('falls back to a local snapshot when the source declines, throws or is too slow', async () => {
    await withTempDir(async (root) => {
      const outcomes: RemoteOutcome[] = [];
      let lateMountpoint = '';
      const remote = new FakeRemote(async (req) => {
        if (req.target === 'sha256:no') return { fallback: 'no zTOC for this layer' };
        if (req.target === 'sha256:err') throw new Error('registry down');
        lateMountpoint = req.mountpoint;
        // A source that ignores the abort and mounts anyway, after the timeout fired.
        await new Promise((r) => req.signal.addEventListener('abort', r));
        return 'mounted';
      });
      const sn = await open(root, { remote, mountTimeoutMs: 50, onRemoteOutcome: (o) => outcomes.push(o) });
      for (const t of ['sha256:no', 'sha256:err', 'sha256:slow']) {
        const mounts = await sn.prepare(`k-${t}`, '', labels(t));
        expect(mounts[0]!.options).toEqual(['rw', 'rbind']);
        expect(sn.stat(`k-${t}`).kind).toBe('active');
      }
      expect(outcomes).toEqual(['fallback', 'error', 'timeout']);
      expect(remote.calls[2]!.signal.aborted).toBe(true);
      await vi.waitFor(() => expect(remote.unmounted).toHaveLength(1));
      // The late mount was taken down again.
      expect(remote.unmounted).toEqual([lateMountpoint]);
      await sn.commit('sha256:slow', 'k-sha256:slow', { [LABEL.snapshotRef]: 'sha256:slow' });
      expect(sn.stat('sha256:slow').labels[LABEL.remote]).toBeUndefined();
    });
  });

  it('starts even when restoring a remote layer hangs (gives up after the mount timeout)', async () => {
    await withTempDir(async (root) => {
      const first = await open(root, { remote: new FakeRemote(async () => 'mounted') });
      await expectCode(first.prepare('k', '', labels('sha256:r')), 'SNAPSHOTTER_ALREADY_EXISTS');
      await first.close();
      let signal: AbortSignal | undefined;
      const hanging = new FakeRemote(async () => 'mounted');
      hanging.restore = (req: RemoteRestoreRequest) => {
        signal = req.signal;
        return new Promise<void>(() => {});
      };
      const again = await open(root, { remote: hanging, mountTimeoutMs: 20 });
      await again.whenRestored();
      expect(signal?.aborted).toBe(true);
      expect(again.stat('sha256:r').kind).toBe('committed');
      await expectCode(again.prepare('on-r', 'sha256:r'), 'SNAPSHOTTER_UNAVAILABLE');
    });
  });
});
