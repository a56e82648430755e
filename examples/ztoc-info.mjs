#!/usr/bin/env node
// Builds the zTOC of a local gzip (or plain) tar layer in one pass and prints what
// `soci ztoc info` prints, then reads one file back through the span checkpoints alone.
// Usage: node examples/ztoc-info.mjs layer.tar.gz [path-in-layer] [--span-size BYTES]
// (after `pnpm build`)
import { open } from 'node:fs/promises';
import { buildZtoc, extractFileBytes, ztocInfo } from '@soci-ts/ztoc';

const args = process.argv.slice(2);
const spanFlag = args.indexOf('--span-size');
const spanSize = spanFlag >= 0 ? Number(args.splice(spanFlag, 2)[1]) : undefined;
const [layerPath, wanted] = args;
if (!layerPath) {
  console.error('usage: node examples/ztoc-info.mjs layer.tar.gz [path-in-layer] [--span-size BYTES]');
  process.exit(2);
}

const file = await open(layerPath);
const { buffer: head } = await file.read(Buffer.alloc(2), 0, 2, 0);
const compression = head[0] === 0x1f && head[1] === 0x8b ? 'gzip' : 'uncompressed';
const ztoc = await buildZtoc(file.createReadStream(), { compression, spanSize });
const { files, ...summary } = ztocInfo(ztoc);
console.log(JSON.stringify(summary, null, 2));

if (wanted) {
  // Only the compressed byte ranges of the spans that hold the file are read.
  const layer = await open(layerPath);
  const bytes = await extractFileBytes(ztoc, wanted, async (start, end) => {
    const buf = Buffer.alloc(end - start);
    await layer.read(buf, 0, buf.length, start);
    return buf;
  });
  process.stdout.write(bytes);
  await layer.close();
}
