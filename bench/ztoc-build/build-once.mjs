// One buildZtoc pass over a gzip layer, run as its own process so its peak RSS is ours alone.
// Prints one JSON line: uncompressed bytes, seconds, maxRSS (bytes), spans, files.
import { createReadStream } from 'node:fs';
import { buildZtoc, encodeZtoc } from '@soci-ts/ztoc';

const [layer, spanSize] = process.argv.slice(2);
const start = process.hrtime.bigint();
const ztoc = await buildZtoc(createReadStream(layer, { highWaterMark: 1 << 20 }), {
  compression: 'gzip',
  spanSize: spanSize ? Number(spanSize) : undefined,
});
const seconds = Number(process.hrtime.bigint() - start) / 1e9;
const encoded = encodeZtoc(ztoc);
console.log(
  JSON.stringify({
    uncompressedBytes: ztoc.uncompressedArchiveSize,
    compressedBytes: ztoc.compressedArchiveSize,
    seconds,
    maxRssBytes: process.resourceUsage().maxRSS * 1024,
    spans: ztoc.compressionInfo.spanDigests.length,
    files: ztoc.toc.length,
    ztocBytes: encoded.length,
  }),
);
