// A decompressing tool that cannot run, or dies, is the host's trouble: SNAPSHOTTER_TOOL_FAILED,
// never "the image is corrupt" (SNAPSHOTTER_BAD_LAYER), which is for a tool that refused the bytes.
// Each case puts a fake `igzip` first on PATH; the decoder looks PATH up once per process, so each
// case runs in its own child process.
import { chmod, mkdtemp, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { spawnTs } from '@soci-ts/testing/process';
import { describe, expect, it } from 'vitest';

const SCRIPT = `
import { createHash } from 'node:crypto';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { unpackLayer } from ${JSON.stringify(join(import.meta.dirname, '../src/unpack/unpack-layer.ts'))};
const blob = gzipSync(Buffer.alloc(1024));
try {
  await unpackLayer({
    blob: [blob],
    digest: 'sha256:' + createHash('sha256').update(blob).digest('hex'),
    size: blob.length,
    mediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    dest: mkdtempSync(join(tmpdir(), 'tool-failure-')),
    decoders: { gzip: 'igzip', zstd: 'auto' },
  });
  console.log(JSON.stringify({ ok: true }));
} catch (err) {
  console.log(JSON.stringify({ code: err.code, message: err.message }));
}
`;

async function unpackWithFakeIgzip(body: string): Promise<{ code?: string; message?: string }> {
  const bin = await mkdtemp(join(tmpdir(), 'fake-igzip-'));
  await writeFile(join(bin, 'igzip'), body);
  await chmod(join(bin, 'igzip'), 0o755);
  const script = join(bin, 'run.mts');
  await writeFile(script, SCRIPT);
  const r = await spawnTs(script, [], { env: { PATH: `${bin}:${process.env.PATH}` }, killAfterMs: 60_000 })
    .done;
  const line = r.stdout.trim().split('\n').pop() ?? '';
  try {
    return JSON.parse(line);
  } catch {
    throw new Error(`no result from the child: ${r.stdout}\n${r.stderr}`);
  }
}

describe('a decompressing tool that fails is not a corrupt layer', () => {
  it('cannot run (its interpreter is missing): SNAPSHOTTER_TOOL_FAILED', async () => {
    const r = await unpackWithFakeIgzip('#!/nonexistent/interpreter\n');
    expect(r.code).toBe('SNAPSHOTTER_TOOL_FAILED');
    expect(r.message).toMatch(/could not run .*igzip.*gzip_decoder = "zlib"/);
  });

  it('killed by a signal: SNAPSHOTTER_TOOL_FAILED', async () => {
    const r = await unpackWithFakeIgzip('#!/bin/sh\nkill -KILL $$\n');
    expect(r.code).toBe('SNAPSHOTTER_TOOL_FAILED');
    expect(r.message).toMatch(/igzip -d was killed by SIGKILL/);
  });

  it('refuses the bytes (exit 1): SNAPSHOTTER_BAD_LAYER, as before', async () => {
    const r = await unpackWithFakeIgzip('#!/bin/sh\ncat >/dev/null\necho "igzip: not gzip" >&2\nexit 1\n');
    expect(r.code).toBe('SNAPSHOTTER_BAD_LAYER');
    expect(r.message).toMatch(/not a valid compressed stream .*exited with 1/);
  });
});
