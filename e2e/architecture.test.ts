// The shape design.md gives the packages, checked on the sources: which package may import which
// (no arrow from a lower package to a higher one), no import circle inside a package, no source file
// over 500 lines, and every name a package's index.ts exports is in its README's API. Reads files
// only: no build, no services.
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from './support/stack.js';

const PACKAGES = join(REPO_ROOT, 'packages');

/** design.md's arrows ("depends on"): the workspace packages each package's src may import. */
const ALLOWED: Record<string, string[]> = {
  errors: [],
  'seekable-gzip': ['errors'],
  ztoc: ['errors', 'seekable-gzip'],
  'oci-referrers': ['errors'],
  'soci-index': ['errors', 'ztoc', 'oci-referrers'],
  'lazy-fs': ['errors', 'ztoc', 'oci-referrers'],
  'containerd-client': ['errors', 'oci-referrers'],
  snapshotter: ['errors', 'containerd-client', 'lazy-fs', 'oci-referrers', 'soci-index', 'ztoc'],
  cli: ['errors', 'containerd-client', 'lazy-fs', 'oci-referrers', 'soci-index', 'snapshotter', 'ztoc'],
  testing: [],
};

/** The workspace package folder behind an `@soci-ts/<folder>` or `soci-cli` specifier. */
function workspaceFolder(specifier: string): string | undefined {
  if (specifier === 'soci-cli') return 'cli';
  const m = /^@soci-ts\/([^/]+)/.exec(specifier);
  return m?.[1];
}

function sourceFiles(dir: string): string[] {
  return readdirSync(dir).flatMap((name) => {
    const path = join(dir, name);
    if (statSync(path).isDirectory()) return sourceFiles(path);
    return /\.(ts|mts)$/.test(name) && !name.endsWith('.d.ts') ? [path] : [];
  });
}

/** Static import and re-export specifiers of a module (dynamic import() is a deliberate lazy edge). */
function importsOf(text: string): string[] {
  const found: string[] = [];
  const re = /^\s*(?:import|export)\s[^;]*?\sfrom\s+'([^']+)'|^\s*import\s+'([^']+)'/gm;
  for (let m = re.exec(text); m; m = re.exec(text)) found.push((m[1] ?? m[2])!);
  return found;
}

const packages = readdirSync(PACKAGES).filter((p) => statSync(join(PACKAGES, p, 'src')).isDirectory());

describe('package layering (design.md)', () => {
  it('knows every package', () => {
    expect(packages.sort()).toEqual(Object.keys(ALLOWED).sort());
  });

  for (const pkg of packages) {
    it(`${pkg}: imports only the packages below it`, () => {
      const wrong: string[] = [];
      for (const file of sourceFiles(join(PACKAGES, pkg, 'src'))) {
        for (const spec of importsOf(readFileSync(file, 'utf8'))) {
          const folder = workspaceFolder(spec);
          if (folder && folder !== pkg && !ALLOWED[pkg]!.includes(folder)) {
            wrong.push(`${relative(REPO_ROOT, file)} imports ${spec}`);
          }
        }
      }
      expect(wrong).toEqual([]);
    });
  }
});

describe('modules', () => {
  for (const pkg of packages) {
    it(`${pkg}: no import circle and no file over 500 lines`, () => {
      const src = join(PACKAGES, pkg, 'src');
      const files = sourceFiles(src);
      const long = files
        .map((f) => [relative(REPO_ROOT, f), readFileSync(f, 'utf8').split('\n').length - 1] as const)
        .filter(([, lines]) => lines > 500);
      expect(long).toEqual([]);

      const edges = new Map<string, string[]>();
      for (const file of files) {
        const targets = importsOf(readFileSync(file, 'utf8'))
          .filter((spec) => spec.startsWith('.'))
          .map((spec) => resolve(dirname(file), spec).replace(/\.js$/, '.ts'));
        edges.set(file, targets);
      }
      const circles: string[] = [];
      const state = new Map<string, 'open' | 'done'>();
      const visit = (file: string, path: string[]): void => {
        if (state.get(file) === 'done') return;
        if (state.get(file) === 'open') {
          const loop = path.slice(path.indexOf(file)).concat(file);
          circles.push(loop.map((f) => relative(src, f)).join(' -> '));
          return;
        }
        state.set(file, 'open');
        for (const next of edges.get(file) ?? []) visit(next, [...path, file]);
        state.set(file, 'done');
      };
      for (const file of files) visit(file, []);
      expect(circles).toEqual([]);
    });
  }
});

/** Names a package's index.ts exports (values and types), following `export *` into the module. */
function exportedNames(indexFile: string): string[] {
  const text = readFileSync(indexFile, 'utf8');
  const names: string[] = [];
  for (const m of text.matchAll(/export\s+(?:type\s+)?\{([^}]*)\}/g)) {
    for (const part of m[1]!.split(',')) {
      const name = part
        .trim()
        .replace(/^type\s+/, '')
        .split(/\s+as\s+/)
        .pop()!;
      if (name) names.push(name);
    }
  }
  for (const m of text.matchAll(/export\s+(?:async\s+)?(?:function|class|const|interface|type)\s+(\w+)/g)) {
    names.push(m[1]!);
  }
  for (const m of text.matchAll(/export\s+\*\s+from\s+'([^']+)'/g)) {
    names.push(...exportedNames(resolve(dirname(indexFile), m[1]!.replace(/\.js$/, '.ts'))));
  }
  return names;
}

describe('public API (a package is what its index.ts exports)', () => {
  const libraries = packages.filter((p) => !['cli', 'testing'].includes(p));
  for (const pkg of libraries) {
    it(`${pkg}: the README names every export of index.ts`, () => {
      const readme = readFileSync(join(PACKAGES, pkg, 'README.md'), 'utf8');
      const missing = exportedNames(join(PACKAGES, pkg, 'src/index.ts')).filter(
        (name) => !new RegExp(`\\b${name}\\b`).test(readme),
      );
      expect(missing).toEqual([]);
    });
  }
});
