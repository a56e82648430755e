import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { RemoteLayer } from '../src/index.js';
import {
  type BuiltLayer,
  buildLayer,
  compressibleBytes,
  FileBlobReader,
  tempDir,
  writeTree,
} from './helpers.js';

// The silence period: background spans wait until foreground reads have left the network alone.
// Margins are wide (300 ms checks against a 2 s period) so a loaded machine cannot flip them.
let work: string;
let built: BuiltLayer;

beforeAll(async () => {
  work = await tempDir('quiet');
  const files: Record<string, Uint8Array> = {};
  for (let i = 0; i < 8; i++) files[`f${i}.bin`] = compressibleBytes(150_000, i + 1);
  await writeTree(join(work, 'root'), files);
  built = await buildLayer(join(work, 'root'), join(work, 'layer'), { spanSize: 64 * 1024 });
});

afterAll(async () => {
  if (work) await rm(work, { recursive: true, force: true });
});

function layerWithQuiet(silencePeriodMs: number) {
  const reader = new FileBlobReader(built.blobPath, built.size);
  const layer = new RemoteLayer({
    layer: { digest: built.digest, size: built.size },
    ztoc: built.ztoc,
    blob: reader,
    background: { concurrency: 1, silencePeriodMs },
  });
  return { layer, reader };
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

it('starts background fetching only after the quiet period, and restarts the wait after a foreground read', async () => {
  const { layer, reader } = layerWithQuiet(2000);
  layer.startBackground();
  await sleep(300);
  expect(reader.requests.length).toBe(0); // still within the quiet period after the start
  await layer.read('f3.bin', 0, 10); // foreground activity resets the clock
  const afterRead = reader.requests.length;
  expect(afterRead).toBeGreaterThan(0);
  await sleep(300);
  expect(reader.requests.length).toBe(afterRead); // 300 ms after the read: still quiet
  await layer.backgroundDone();
  expect(layer.stats().complete).toBe(true);
  await layer.close();
});

it('without a quiet period the background fetch starts at once', async () => {
  const { layer, reader } = layerWithQuiet(0);
  layer.startBackground();
  await sleep(100);
  expect(reader.requests.length).toBeGreaterThan(0);
  await layer.backgroundDone();
  await layer.close();
});
