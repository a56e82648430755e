import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { loadSnapshotsProto, PROTO_DIR } from '../src/proto.js';

const pkgDir = join(import.meta.dirname, '..');

describe('vendored protos (owned by @soci-ts/containerd-client)', () => {
  it('come from the containerd-client dependency and load with proto-loader', async () => {
    const pkg = JSON.parse(await readFile(join(pkgDir, 'package.json'), 'utf8')) as {
      dependencies: Record<string, string>;
    };
    expect(pkg.dependencies['@soci-ts/containerd-client']).toBeDefined();
    expect(PROTO_DIR).toMatch(/containerd-client\/proto\/?$/);
    const service = loadSnapshotsProto().service;
    expect(Object.keys(service).sort()).toEqual(
      ['Cleanup', 'Commit', 'List', 'Mounts', 'Prepare', 'Remove', 'Stat', 'Update', 'Usage', 'View'].sort(),
    );
    expect(service.List!.responseStream).toBe(true);
    expect(service.Prepare!.path).toBe('/containerd.services.snapshots.v1.Snapshots/Prepare');
  });

  it('keep their licence headers and no gogoproto', async () => {
    const files = (await readdir(PROTO_DIR, { recursive: true })).filter((f) => f.endsWith('.proto'));
    expect(files.length).toBeGreaterThanOrEqual(5);
    for (const f of files) {
      const text = await readFile(join(PROTO_DIR, f), 'utf8');
      expect(text).not.toContain('gogoproto');
      expect(text).toMatch(/Copyright (The containerd Authors|2008 Google Inc)/);
    }
  });
});
