// One unpackLayer call for bench/unpack/run.sh, in its own process: streams BLOB from disk into
// unpackLayer (the built bundle, public options only) and prints one JSON line:
// {"ms": <elapsed from the first read to the resolved promise>, "entries", "bytes", "warnings",
// "decoder"}.
// Module loading is outside "ms" (in the daemon it is paid once). An UnpackError is printed as
// {"error": "<code>", "message"} on stdout with exit code 3; anything else throws (exit code 1).
// The bundle is packages/snapshotter/dist/index.js, or $SOCI_UNPACK_MODULE (run.sh: a copy of it).
// Usage: node unpack-once.mjs BLOB MEDIA_TYPE sha256:<hex> DEST_DIR
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { pathToFileURL } from 'node:url';

const bundle = process.env.SOCI_UNPACK_MODULE
  ? pathToFileURL(process.env.SOCI_UNPACK_MODULE).href
  : new URL('../../packages/snapshotter/dist/index.js', import.meta.url).href;
const { UnpackError, unpackLayer } = await import(bundle);

const [blob, mediaType, digest, dest] = process.argv.slice(2);
if (!dest) throw new Error('usage: unpack-once.mjs BLOB MEDIA_TYPE DIGEST DEST');
const { size } = await stat(blob);

const start = process.hrtime.bigint();
try {
  const result = await unpackLayer({
    blob: createReadStream(blob, { highWaterMark: 1 << 20 }),
    digest,
    size,
    mediaType,
    dest,
  });
  const ms = Number(process.hrtime.bigint() - start) / 1e6;
  console.log(
    JSON.stringify({
      ms,
      entries: result.entries,
      bytes: result.bytes,
      warnings: result.warnings.length,
      // Which decompressor it chose, where the result says so.
      decoder: result.decoder ?? null,
    }),
  );
} catch (err) {
  if (!(err instanceof UnpackError)) throw err;
  console.log(JSON.stringify({ error: err.code, message: err.message }));
  process.exitCode = 3;
}
