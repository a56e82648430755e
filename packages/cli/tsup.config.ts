import { defineConfig } from 'tsup';

// The workspace packages are bundled from their TypeScript sources (the "source" condition),
// with their few npm dependencies, so `pnpm --filter soci-cli build` alone gives a working
// dist/bin.js, whatever state the other packages' dist folders are in.
export default defineConfig({
  entry: ['src/index.ts', 'src/bin.ts', 'src/ztoc-worker.ts'],
  format: ['esm'],
  dts: { entry: 'src/index.ts' },
  sourcemap: true,
  clean: true,
  target: 'node20',
  platform: 'node',
  // containerd-client stays external: it loads its .proto files from beside its own dist, and is
  // only imported (dynamically) for --containerd-address.
  noExternal: [/^@soci-ts\/(?!containerd-client)/, 'undici', 'pako', 'flatbuffers'],
  esbuildOptions(options) {
    options.conditions = ['source', 'import', 'node'];
  },
  // Bundled CommonJS dependencies may call require(); give ESM output one.
  banner: {
    js: "import { createRequire as __socitsCreateRequire } from 'node:module'; const require = __socitsCreateRequire(import.meta.url);",
  },
});
