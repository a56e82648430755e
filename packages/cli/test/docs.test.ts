// The guides in docs/ quote the daemon's configuration and metric names; these tests fail when
// the code changes and the guides do not.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { defaultConfig, formatConfig, parseConfig } from '@soci-ts/snapshotter';
import { describe, expect, it } from 'vitest';
import { bufferIo } from '../src/io.js';
import { buildProgram } from '../src/main.js';

const REPO = join(import.meta.dirname, '..', '..', '..');
const doc = (name: string) => readFile(join(REPO, 'docs', name), 'utf8');

/** The fenced ```toml block of install.md's configuration reference. */
async function configReference(): Promise<string> {
  const text = await doc('install.md');
  const section = text.slice(text.indexOf('## Daemon configuration reference'));
  const m = /```toml\n([\s\S]*?)```/.exec(section);
  if (!m) throw new Error('install.md has no toml block in its configuration reference');
  return m[1]!;
}

describe('docs/install.md configuration reference', () => {
  it('parses with the daemon own parser and shows its defaults', async () => {
    const reference = parseConfig(await configReference());
    const defaults = defaultConfig();
    expect({ ...reference, registry: defaults.registry }).toEqual(defaults);
    expect(Object.keys(reference.registry.hosts)).toEqual(['registry.example.com']);
  });

  it('lists every key the daemon prints with --print-config', async () => {
    const reference = await configReference();
    const keys = [...formatConfig(defaultConfig()).matchAll(/^([a-z_]+) = /gm)].map((m) => m[1]!);
    expect(keys.length).toBeGreaterThan(10);
    for (const key of keys) expect(reference, key).toMatch(new RegExp(`^#? ?${key} = `, 'm'));
  });
});

describe('docs/debugging.md metrics table', () => {
  it('names exactly the soci_ metrics the daemon registers', async () => {
    const srcDir = join(REPO, 'packages', 'snapshotter', 'src');
    const registered = new Set<string>();
    for (const entry of await readdir(srcDir, { recursive: true })) {
      if (!entry.endsWith('.ts')) continue;
      const text = await readFile(join(srcDir, entry), 'utf8');
      for (const m of text.matchAll(/name: '(soci_[a-z_]+)'/g)) registered.add(m[1]!);
    }
    const text = await doc('debugging.md');
    const documented = new Set([...text.matchAll(/^\| `(soci_[a-z_]+)`/gm)].map((m) => m[1]!));
    expect(registered.size).toBeGreaterThan(5);
    expect([...documented].sort()).toEqual([...registered].sort());
  });
});

describe('docs/debugging.md log messages', () => {
  it('every message it lists is one the daemon logs', async () => {
    // The daemon and the FUSE keeper it runs with (lazy-fs's keeper).
    let source = '';
    for (const srcDir of [
      join(REPO, 'packages', 'snapshotter', 'src'),
      join(REPO, 'packages', 'lazy-fs', 'src', 'fuse'),
    ]) {
      for (const entry of await readdir(srcDir, { recursive: true })) {
        if (entry.endsWith('.ts')) source += await readFile(join(srcDir, entry), 'utf8');
      }
    }
    const text = await doc('debugging.md');
    const block = /Messages worth grepping for:\n\n```\n([\s\S]*?)```/.exec(text)?.[1] ?? '';
    const messages = block
      .split('\n')
      .filter(Boolean)
      .flatMap((line) =>
        line.replace(/\s+\((trace|debug|info|warn|error|fatal)(, soci-fuse-keeper)?\).*$/, '').split(' | '),
      )
      .map((m) => m.trim());
    expect(messages.length).toBeGreaterThan(8);
    for (const message of messages) expect(source, message).toContain(`'${message}'`);
  });
});

describe('docs mention the soci pull flags that exist', () => {
  it('every flag quoted for soci pull is one of its options', async () => {
    const pull = buildProgram(bufferIo()).commands.find((c) => c.name() === 'pull')!;
    const flags = new Set(pull.options.flatMap((o) => [o.long, o.short].filter(Boolean) as string[]));
    const names = (await readdir(join(REPO, 'docs'))).filter((n) => n.endsWith('.md'));
    const text = (await Promise.all(names.map(doc))).join('\n');
    // `soci pull ...` commands (inline or in shell blocks) and the getting-started flag list.
    const commands = [...text.matchAll(/soci pull ([^`\n]*)/g)].map((m) => m[1]!);
    const listed = /Useful flags: ([\s\S]*?)\n\n/.exec(await doc('getting-started.md'))?.[1] ?? '';
    const quoted = [...commands, listed].flatMap((t) => t.match(/(?<![\w-])--?[a-z][a-z-]*/g) ?? []);
    expect(quoted).toContain('--soci-index-digest');
    expect(quoted).toContain('--no-unpack-fallback');
    for (const flag of quoted) expect(flags, flag).toContain(flag);
  });
});
