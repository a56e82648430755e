import { defineConfig } from 'tsup';

/** The build of a workspace library: ESM + .d.ts for Node 20, one entry per public module. */
export function libraryBuild(entry: string[] = ['src/index.ts']) {
  return defineConfig({ entry, format: ['esm'], dts: true, sourcemap: true, clean: true, target: 'node20' });
}
