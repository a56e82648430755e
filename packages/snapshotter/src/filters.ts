/**
 * containerd's filter syntax (package `filters`), as used by the `filters` field of
 * ListSnapshotsRequest and by containerd itself when it looks for a remote snapshot
 * (`labels."containerd.io/snapshot.ref"==<target>,parent=="<parent>"`).
 *
 *   selectors := selector ("," selector)*
 *   selector  := fieldpath (operator value)?
 *   fieldpath := field ("." field)*
 *   field     := quoted | [A-Za-z0-9_]+
 *   operator  := "==" | "!=" | "~="
 *   value     := quoted | [^\s,]+
 *   quoted    := "..." (Go string syntax); /.../ or |...| as well after "~="
 *
 * A list of filter strings matches when any of them matches; the selectors of one string must all match.
 */

import { SociError, type SociErrorOptions } from '@soci-ts/errors';

/** Gives a field's value for a path, or undefined when the object has no such field. */
export type FieldAdaptor = (fieldpath: readonly string[]) => string | undefined;

export interface Filter {
  match(field: FieldAdaptor): boolean;
}

/** A filter string is not valid; `input` is the string, `position` the offset of the bad token. */
export class FilterSyntaxError extends SociError<'SNAPSHOTTER_FILTER_SYNTAX'> {
  override readonly name = 'FilterSyntaxError';
  readonly input: string;
  readonly position: number;
  constructor(
    code: 'SNAPSHOTTER_FILTER_SYNTAX',
    message: string,
    options: SociErrorOptions & { input: string; position: number },
  ) {
    super(code, message, options);
    this.input = options.input;
    this.position = options.position;
  }
}

type Operator = '?' | '==' | '!=' | '~=';

interface Selector {
  fieldpath: string[];
  operator: Operator;
  value: string;
}

type TokenKind = 'eof' | 'quoted' | 'value' | 'field' | 'separator' | 'operator' | 'illegal' | 'other';

interface Token {
  kind: TokenKind;
  pos: number;
  text: string;
}

const isFieldChar = (c: string) => /^[A-Za-z0-9_]$/.test(c);
const isQuoteChar = (c: string) => c === '"' || c === '/' || c === '|';
const isOperatorChar = (c: string) => c === '=' || c === '!' || c === '~';
const isSpace = (c: string) => /^\s$/u.test(c);
const isValueChar = (c: string) => c !== ',' && !isSpace(c) && /^[\p{L}\p{N}\p{P}\p{S}\p{M}]$/u.test(c);

/** Splits a filter string into tokens; after an operator, unquoted text is one value token. */
class Scanner {
  private pos = 0;
  private afterOperator = false;
  constructor(private readonly input: string) {}

  peek(): Token {
    const saved = { pos: this.pos, afterOperator: this.afterOperator };
    const token = this.scan();
    this.pos = saved.pos;
    this.afterOperator = saved.afterOperator;
    return token;
  }

  scan(): Token {
    while (this.pos < this.input.length && isSpace(this.charAt(this.pos)))
      this.pos += this.charAt(this.pos).length;
    const start = this.pos;
    if (start >= this.input.length) return { kind: 'eof', pos: start, text: '' };
    const c = this.charAt(start);
    if (c === '\0') return { kind: 'illegal', pos: start, text: 'unexpected null' };
    if (isQuoteChar(c)) return this.scanQuoted(start, c);
    if (c === ',' || c === '.') {
      this.pos += 1;
      this.afterOperator = false;
      return { kind: 'separator', pos: start, text: c };
    }
    if (isOperatorChar(c)) {
      this.pos = this.consumeWhile(start, isOperatorChar);
      this.afterOperator = true;
      return { kind: 'operator', pos: start, text: this.input.slice(start, this.pos) };
    }
    if (this.afterOperator) {
      this.pos = this.consumeWhile(start, isValueChar);
      this.afterOperator = false;
      if (this.pos > start) return { kind: 'value', pos: start, text: this.input.slice(start, this.pos) };
    }
    if (isFieldChar(c)) {
      this.pos = this.consumeWhile(start, isFieldChar);
      return { kind: 'field', pos: start, text: this.input.slice(start, this.pos) };
    }
    this.pos += c.length;
    return { kind: 'other', pos: start, text: c };
  }

  private charAt(i: number): string {
    return String.fromCodePoint(this.input.codePointAt(i)!);
  }

  private consumeWhile(from: number, ok: (c: string) => boolean): number {
    let i = from;
    while (i < this.input.length) {
      const c = this.charAt(i);
      if (!ok(c)) break;
      i += c.length;
    }
    return i;
  }

  private scanQuoted(start: number, quote: string): Token {
    let i = start + 1;
    while (i < this.input.length) {
      const c = this.input[i]!;
      if (c === '\n') break;
      if (c === '\\') {
        i += 2;
        continue;
      }
      if (c === quote) {
        this.pos = i + 1;
        return { kind: 'quoted', pos: start, text: this.input.slice(start, this.pos) };
      }
      i += 1;
    }
    this.pos = this.input.length;
    return { kind: 'illegal', pos: start, text: 'quoted literal not terminated' };
  }
}

const SIMPLE_ESCAPES: Record<string, string> = {
  a: '\x07',
  b: '\b',
  f: '\f',
  n: '\n',
  r: '\r',
  t: '\t',
  v: '\v',
  '\\': '\\',
};

/** Go-style unquoting, where `/` and `|` act like `"` (for regular expressions). */
function unquote(quoted: string): string | undefined {
  const quote = quoted[0]!;
  if (quoted.length < 2 || quoted[quoted.length - 1] !== quote) return undefined;
  const body = quoted.slice(1, -1);
  let out = '';
  for (let i = 0; i < body.length; i++) {
    const c = body[i]!;
    if (c === quote || c === '\n') return undefined;
    if (c !== '\\') {
      out += c;
      continue;
    }
    const e = body[i + 1];
    if (e === undefined) return undefined;
    i += 1;
    if (e in SIMPLE_ESCAPES) out += SIMPLE_ESCAPES[e];
    else if (e === quote) out += e;
    else if (e === 'x' || e === 'u' || e === 'U') {
      const n = e === 'x' ? 2 : e === 'u' ? 4 : 8;
      const hex = body.slice(i + 1, i + 1 + n);
      if (!new RegExp(`^[0-9a-fA-F]{${n}}$`).test(hex)) return undefined;
      const cp = Number.parseInt(hex, 16);
      if (cp > 0x10ffff) return undefined;
      out += String.fromCodePoint(cp);
      i += n;
    } else if (/[0-7]/.test(e)) {
      const oct = body.slice(i, i + 3);
      if (!/^[0-7]{3}$/.test(oct) || Number.parseInt(oct, 8) > 255) return undefined;
      out += String.fromCharCode(Number.parseInt(oct, 8));
      i += 2;
    } else return undefined;
  }
  return out;
}

class Parser {
  private readonly scanner: Scanner;
  constructor(private readonly input: string) {
    this.scanner = new Scanner(input);
  }

  parse(): Selector[] {
    const selectors = [this.selector()];
    for (;;) {
      const next = this.scanner.peek();
      if (next.kind === 'eof') return selectors;
      if (next.kind === 'separator' && next.text === ',') {
        this.scanner.scan();
        selectors.push(this.selector());
        continue;
      }
      throw this.error(next.pos, `unexpected input: ${next.text}`);
    }
  }

  private selector(): Selector {
    const fieldpath = this.fieldpath();
    const next = this.scanner.peek();
    if (next.kind === 'eof' || (next.kind === 'separator' && next.text === ',')) {
      return { fieldpath, operator: '?', value: '' };
    }
    const op = this.scanner.scan();
    if (op.kind !== 'operator') throw this.error(op.pos, 'expected an operator ("=="|"!="|"~=")');
    if (op.text !== '==' && op.text !== '!=' && op.text !== '~=') {
      throw this.error(op.pos, `unsupported operator "${op.text}"`);
    }
    const value = this.scanner.scan();
    switch (value.kind) {
      case 'value':
      case 'field':
        return { fieldpath, operator: op.text, value: value.text };
      case 'quoted':
        return { fieldpath, operator: op.text, value: this.unquote(value, op.text === '~=') };
      case 'illegal':
        throw this.error(value.pos, value.text);
      default:
        throw this.error(value.pos, 'expected value or quoted');
    }
  }

  private fieldpath(): string[] {
    const path = [this.field()];
    for (;;) {
      const next = this.scanner.peek();
      if (next.kind !== 'separator' || next.text !== '.') return path;
      this.scanner.scan();
      path.push(this.field());
    }
  }

  private field(): string {
    const t = this.scanner.scan();
    if (t.kind === 'field') return t.text;
    if (t.kind === 'quoted') return this.unquote(t, false);
    if (t.kind === 'illegal') throw this.error(t.pos, t.text);
    throw this.error(t.pos, 'expected field or quoted');
  }

  private unquote(t: Token, allowAltQuotes: boolean): string {
    if (!allowAltQuotes && t.text[0] !== '"') throw this.error(t.pos, 'invalid quote encountered');
    const value = unquote(t.text);
    if (value === undefined) throw this.error(t.pos, 'unquoting failed: quote syntax error');
    return value;
  }

  private error(pos: number, detail: string): FilterSyntaxError {
    return new FilterSyntaxError(
      'SNAPSHOTTER_FILTER_SYNTAX',
      `filters: parse error: [${this.input}] at offset ${pos}: ${detail}`,
      { input: this.input, position: pos },
    );
  }
}

function matchSelector(s: Selector, field: FieldAdaptor): boolean {
  const value = field(s.fieldpath);
  switch (s.operator) {
    case '?':
      return value !== undefined;
    case '==':
      return value !== undefined && value === s.value;
    case '!=':
      return (value ?? '') !== s.value;
    case '~=':
      try {
        return new RegExp(s.value).test(value ?? '');
      } catch {
        return false;
      }
  }
}

/** Parses one filter string; all of its selectors must match. The empty string matches everything. */
export function parseFilter(input: string): Filter {
  if (input === '') return { match: () => true };
  const selectors = new Parser(input).parse();
  return { match: (field) => selectors.every((s) => matchSelector(s, field)) };
}

/** Parses a list of filter strings, matching when any one matches; an empty list matches everything. */
export function parseFilters(inputs: readonly string[]): Filter {
  if (inputs.length === 0) return { match: () => true };
  const filters = inputs.map(parseFilter);
  return { match: (field) => filters.some((f) => f.match(field)) };
}
