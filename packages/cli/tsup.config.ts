import { cp, rm } from 'node:fs/promises';
import { defineConfig } from 'tsup';

// The workspace packages are bundled from their TypeScript sources (the "source" condition),
// with their few npm dependencies, so `pnpm --filter soci-cli build` alone gives a working
// dist/bin.js, whatever state the other packages' dist folders are in.
export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts', 'src/ztoc-worker.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  // No source maps: the bundle is unminified and marks each module with its source path, so its
  // stack traces read as they are; maps of the bundled gRPC/undici code would be most of the
  // published package. `pnpm --filter soci-cli exec tsup --sourcemap` builds them for a session.
  sourcemap: false,
  clean: true,
  target: 'node20',
  platform: 'node',
  // Keep `node:` on builtins: tsup would strip it, and `node:sqlite` (undici) exists only so.
  removeNodeProtocol: false,
  // containerd-client and its gRPC dependencies are bundled too (imported on demand, by pull and
  // --containerd-address only); its .proto files are copied below.
  noExternal: [/^@soci-ts\//, /^@grpc\//, 'undici', 'pako', 'flatbuffers'],
  esbuildOptions(options) {
    options.conditions = ['source', 'import', 'node'];
  },
  // containerd-client looks for its protos in `proto/` beside the directory of its code, which in
  // this bundle is dist/: so they go to packages/cli/proto (published with the package).
  async onSuccess() {
    await rm('proto', { recursive: true, force: true });
    await cp('../containerd-client/proto', 'proto', { recursive: true });
  },
  // Bundled CommonJS dependencies may call require(); give ESM output one.
  banner: {
    js: "import { createRequire as __socitsCreateRequire } from 'node:module'; const require = __socitsCreateRequire(import.meta.url);",
  },
});
