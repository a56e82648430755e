// The programs in examples/ run as a user would run them, against real data.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildBusyboxImage } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { pushLayout } from '@soci-ts/testing/images';
import { run } from '@soci-ts/testing/process';
import { startRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { SOCI_BIN } from './support/stack.js';

const EXAMPLES = resolve(dirname(fileURLToPath(import.meta.url)), '../examples');
let work: string;

beforeAll(async () => {
  work = await mkdtemp(join(tmpdir(), 'soci-examples-'));
});
afterAll(async () => {
  await rm(work, { recursive: true, force: true });
});

it('ztoc-info.mjs summarises a GNU tar + gzip layer and reads a file back from its spans', async () => {
  const text = 'line of text\n'.repeat(40_000);
  await run('mkdir', ['-p', join(work, 'tree/sub')]);
  await writeFile(join(work, 'tree/sub/text.txt'), text);
  await writeFile(join(work, 'tree/noise.bin'), noiseBytes(300_000, 3));
  await run('sh', ['-c', `tar -C ${work}/tree -cf - . | gzip -6 > ${work}/layer.tgz`]);
  const out = await run('node', [
    join(EXAMPLES, 'ztoc-info.mjs'),
    join(work, 'layer.tgz'),
    './sub/text.txt',
    '--span-size',
    '65536',
  ]);
  const end = out.stdout.indexOf('\n}\n') + 3;
  const summary = JSON.parse(out.stdout.slice(0, end)) as Record<string, number>;
  expect(summary.num_files).toBe(4); // ./, ./sub/, ./sub/text.txt, ./noise.bin
  expect(summary.span_size).toBe(65536);
  expect(summary.num_spans).toBeGreaterThan(2);
  expect(out.stdout.slice(end)).toBe(text);
});

it('cat-remote-file.mjs prints a file of a remote image through its SOCI index', async () => {
  const registry = await startRegistry();
  const image = await buildBusyboxImage([
    { '/bin/busybox': { busybox: true } },
    { '/etc/greeting': 'hello from a lazy layer\n' },
  ]);
  try {
    const ref = await pushLayout(image, { host: registry.host, repository: 'examples/app', tag: '1' });
    const store = ['--root', join(work, 'store'), '--plain-http', '--quiet'];
    await run('node', [SOCI_BIN, 'create', ref, '--min-layer-size', '0', '--span-size', '65536', ...store]);
    await run('node', [SOCI_BIN, 'push', ref, ...store]);
    const out = await run('node', [
      join(EXAMPLES, 'cat-remote-file.mjs'),
      ref,
      'etc/greeting',
      '--plain-http',
    ]);
    expect(out.stdout).toBe('hello from a lazy layer\n');
    await expect(
      run('node', [join(EXAMPLES, 'cat-remote-file.mjs'), ref, 'etc/nothing', '--plain-http']),
    ).rejects.toThrow(/is in no indexed layer/);
  } finally {
    await registry.stop();
    await image.cleanup();
  }
});
