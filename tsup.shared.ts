import { defineConfig } from 'tsup';

/**
 * The build of a workspace library: ESM for Node 20, one entry per module that runs on its own
 * (bins, workers), and .d.ts of the public API (src/index.ts). Node builtins keep their `node:`
 * prefix (tsup strips it by default, which breaks prefix-only modules such as `node:sqlite`).
 */
export function libraryBuild(entry: string[] = ['src/index.ts']) {
  return defineConfig({
    entry,
    format: ['esm'],
    dts: { entry: 'src/index.ts' },
    sourcemap: true,
    clean: true,
    target: 'node20',
    removeNodeProtocol: false,
  });
}
