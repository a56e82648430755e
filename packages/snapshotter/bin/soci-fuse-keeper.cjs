#!/usr/bin/env node
// The FUSE keeper holds one blocking /dev/fuse read per mount in libuv's thread pool, whose
// size is read once, when Node first uses it: set it here, before any module loads.
process.env.UV_THREADPOOL_SIZE = process.env.UV_THREADPOOL_SIZE || '256';
import('../dist/fuse-keeper-main.js').then(
  (m) => m.main(process.argv.slice(2)).then((code) => process.exit(code)),
  (err) => {
    process.stderr.write(`soci-fuse-keeper: ${err?.stack ?? err}\n`);
    process.exit(1);
  },
);
