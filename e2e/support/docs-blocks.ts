// The runnable code blocks of docs/*.md and how a page's blocks become one shell script.
//
// A fenced block is runnable when its info string has the word `docs-test`:
//
//   ```sh docs-test                      a shell block, run with bash -eo pipefail
//   ```sh docs-test containerd=2         only when the containerd under test has that major version
//   ```toml docs-test file=/etc/x.toml   written to that file (placeholders substituted) before the
//                                        page's next blocks run
//
// Inside a shell block, `# expect: TEXT` asks that TEXT appear in what the block printed
// (stdout and stderr together), `# expect-not: TEXT` that it does not. A shell block that is not
// run says why on the line before its fence, `<!-- docs-test skip: REASON -->`, unless it needs
// what this machine lacks (the docs test's UNRUNNABLE list).
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export interface DocBlock {
  /** File name under docs/. */
  page: string;
  /** 1-based line of the opening fence. */
  line: number;
  /** First word of the info string (`sh`, `toml`, ...). */
  lang: string;
  /** Has `docs-test` in its info string. */
  marked: boolean;
  /** `key=value` words of the info string after `docs-test`. */
  attrs: Record<string, string>;
  body: string;
  expects: string[];
  expectNots: string[];
  /** Why the block is not run, from a `<!-- docs-test skip: REASON -->` line before it. */
  skip?: string;
}

/** Info-string attributes a marked block may have. */
const ATTRS = new Set(['file', 'containerd']);
/** Anything that looks like the marker but is not exactly it (a typo would silently skip a block). */
const NEAR_MISS = /doc[s]?[-_ .]?test|docs?test/i;

/** Every fenced block of a markdown text; throws on a malformed marker. */
export function parseBlocks(page: string, text: string): DocBlock[] {
  const lines = text.split('\n');
  const blocks: DocBlock[] = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^\s*(`{3,}|~{3,})(.*)$/.exec(lines[i]!);
    if (!open) continue;
    const fence = open[1]!;
    const words = open[2]!.trim().split(/\s+/).filter(Boolean);
    const start = i;
    const body: string[] = [];
    for (i++; i < lines.length; i++) {
      const close = new RegExp(`^\\s*${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
      if (close.test(lines[i]!)) break;
      body.push(lines[i]!);
    }
    if (i >= lines.length) throw new Error(`docs/${page}:${start + 1}: a code block is never closed`);
    const marked = words.includes('docs-test');
    const where = `docs/${page}:${start + 1}`;
    const before =
      lines
        .slice(0, start)
        .reverse()
        .find((l) => l.trim() !== '') ?? '';
    const skip = /^<!-- docs-test skip: (.+) -->$/.exec(before.trim())?.[1];
    if (!skip && /^\s*<!--.*docs-test/.test(before))
      throw new Error(`${where}: write <!-- docs-test skip: REASON -->`);
    if (skip && marked) throw new Error(`${where}: a block is either marked docs-test or skipped`);
    for (const word of words.slice(1)) {
      if (word !== 'docs-test' && NEAR_MISS.test(word)) {
        throw new Error(`${where}: "${word}" looks like a docs-test marker but is not one`);
      }
    }
    const attrs: Record<string, string> = {};
    if (marked) {
      for (const word of words.slice(words.indexOf('docs-test') + 1)) {
        const kv = /^([a-z]+)=(.+)$/.exec(word);
        if (!kv || !ATTRS.has(kv[1]!)) throw new Error(`${where}: unknown docs-test attribute "${word}"`);
        attrs[kv[1]!] = kv[2]!;
      }
      if (words[0] === 'docs-test') throw new Error(`${where}: give the block a language before docs-test`);
      if (words[0] !== 'sh' && !attrs.file) {
        throw new Error(`${where}: a marked ${words[0]} block needs file=<path> (only sh blocks run)`);
      }
      if (words[0] === 'sh' && attrs.file) throw new Error(`${where}: file= is for non-shell blocks`);
      if (attrs.containerd !== undefined && !/^[12]$/.test(attrs.containerd)) {
        throw new Error(`${where}: containerd= takes 1 or 2`);
      }
    }
    const directive = (name: string) =>
      body
        .map((l) => new RegExp(`^\\s*# ${name}: (.+)$`).exec(l)?.[1])
        .filter((t): t is string => t !== undefined);
    blocks.push({
      page,
      line: start + 1,
      lang: words[0] ?? '',
      marked,
      attrs,
      body: body.join('\n'),
      expects: directive('expect'),
      expectNots: directive('expect-not'),
      ...(skip ? { skip } : {}),
    });
  }
  return blocks;
}

/** Every block of every page in `docsDir`, pages in name order. */
export function readDocBlocks(docsDir: string): DocBlock[] {
  return readdirSync(docsDir)
    .filter((f) => f.endsWith('.md'))
    .sort()
    .flatMap((page) => parseBlocks(page, readFileSync(join(docsDir, page), 'utf8')));
}

/** Replaces each documented placeholder (longest first) with the test stack's value. */
export function substitute(text: string, values: ReadonlyMap<string, string>): string {
  let out = text;
  for (const [from, to] of [...values].sort((a, b) => b[0].length - a[0].length)) {
    out = out.split(from).join(to);
  }
  return out;
}

export const BLOCK_MARK = '@@docs-block';
export const END_MARK = '@@docs-end@@';

/**
 * One bash script for a page's blocks, in order: a marker line before each, the file blocks
 * written with a quoted here-document, and a final marker that only a script that ran to its
 * end prints.
 */
export function pageScript(blocks: readonly DocBlock[], values: ReadonlyMap<string, string>): string {
  const parts = ['set -eo pipefail', 'exec 2>&1'];
  blocks.forEach((block, n) => {
    parts.push(`echo '${BLOCK_MARK} ${n}@@'`);
    const body = substitute(block.body, values);
    if (block.attrs.file) {
      const file = substitute(block.attrs.file, values);
      const eof = 'DOCS_TEST_EOF';
      if (body.includes(eof)) throw new Error(`docs/${block.page}:${block.line}: the block contains ${eof}`);
      parts.push(`mkdir -p "$(dirname '${file}')"`, `cat > '${file}' <<'${eof}'`, body, eof);
    } else {
      parts.push(body);
    }
  });
  parts.push(`echo '${END_MARK}'`);
  return `${parts.join('\n')}\n`;
}

/** What each block printed, by block number, from the script's combined output. */
export function splitOutput(output: string): { perBlock: Map<number, string>; ended: boolean } {
  const perBlock = new Map<number, string>();
  let current: number | undefined;
  let ended = false;
  for (const line of output.split('\n')) {
    const mark = new RegExp(`^${BLOCK_MARK} (\\d+)@@$`).exec(line);
    if (mark) {
      current = Number(mark[1]);
      perBlock.set(current, '');
    } else if (line === END_MARK) {
      ended = true;
      current = undefined;
    } else if (current !== undefined) {
      perBlock.set(current, `${perBlock.get(current)}${line}\n`);
    }
  }
  return { perBlock, ended };
}
