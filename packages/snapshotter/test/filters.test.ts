import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FieldAdaptor, FilterSyntaxError, parseFilter, parseFilters } from '../src/filters.js';
import { snapshotFields } from '../src/snapshotter.js';

const info = (labels: Record<string, string>, extra: Partial<{ name: string; parent: string }> = {}) =>
  snapshotFields({
    name: extra.name ?? 'default/3/sha256:abc',
    parent: extra.parent ?? '',
    kind: 'committed',
    labels,
    created: new Date(0),
    updated: new Date(0),
  });

/** Go's strconv.Quote for the characters the generators produce. */
const goQuote = (s: string) => JSON.stringify(s);

describe('containerd filter syntax', () => {
  it('matches the filter containerd uses to find a remote snapshot', () => {
    const target = 'sha256:4403e9a5dc74399dcaaa108ae4f27a03e490ca6bc5b7969382b281e';
    const f = parseFilter(`labels."containerd.io/snapshot.ref"==${target},parent==""`);
    expect(f.match(info({ 'containerd.io/snapshot.ref': target }))).toBe(true);
    expect(f.match(info({ 'containerd.io/snapshot.ref': target }, { parent: 'p' }))).toBe(false);
    expect(f.match(info({ 'containerd.io/snapshot.ref': 'sha256:other' }))).toBe(false);
    expect(f.match(info({}))).toBe(false);
  });

  it('supports presence, !=, ~= and kind/name fields', () => {
    const i = info({ a: '1', 'x.y': 'z' }, { name: 'n1' });
    expect(parseFilter('labels.a').match(i)).toBe(true);
    expect(parseFilter('labels.b').match(i)).toBe(false);
    expect(parseFilter('labels.x.y==z').match(i)).toBe(true); // unquoted dotted path joins with "."
    expect(parseFilter('labels.a!=2').match(i)).toBe(true);
    expect(parseFilter('labels.b!=2').match(i)).toBe(true); // absent field is "" for !=
    expect(parseFilter('name~=^n[0-9]$').match(i)).toBe(true);
    expect(parseFilter('name~=/^n[0-9]$/').match(i)).toBe(true);
    expect(parseFilter('kind==committed,name==n1').match(i)).toBe(true);
    expect(parseFilter('kind==active').match(i)).toBe(false);
    expect(parseFilter(' name == n1 ').match(i)).toBe(true);
  });

  it('ORs a list of filters and matches everything when the list is empty', () => {
    const i = info({}, { name: 'n1' });
    expect(parseFilters([]).match(i)).toBe(true);
    expect(parseFilters(['name==x', 'name==n1']).match(i)).toBe(true);
    expect(parseFilters(['name==x', 'name==y']).match(i)).toBe(false);
  });

  it.each([
    'name==',
    'name=x',
    '==x',
    'name==x,',
    'labels."unterminated',
    'name==/re/',
    'name=="bad\\q"',
    'name==x y',
    'labels.',
  ])('rejects %j with a FilterSyntaxError', (input) => {
    expect(() => parseFilter(input)).toThrow(FilterSyntaxError);
  });

  it('round-trips any label key and value through Go quoting', () => {
    fc.assert(
      fc.property(fc.string({ minLength: 1 }), fc.string(), (key, value) => {
        fc.pre(!/[\u0000-\u001f\u007f\u2028\u2029]/.test(key + value));
        const f = parseFilter(`labels.${goQuote(key)}==${goQuote(value)}`);
        const fields: FieldAdaptor = (path) =>
          path[0] === 'labels' && path.slice(1).join('.') === key ? value : undefined;
        expect(f.match(fields)).toBe(true);
        expect(f.match(() => undefined)).toBe(false);
      }),
    );
  });

  it('reads an unquoted value up to the next comma', () => {
    fc.assert(
      fc.property(fc.stringMatching(/^[A-Za-z0-9:@/_.+-]{1,40}$/), (value) => {
        fc.pre(!/^[/|"=!~.,]/.test(value));
        const f = parseFilter(`name==${value},kind==view`);
        expect(f.match((p) => (p[0] === 'name' ? value : p[0] === 'kind' ? 'view' : undefined))).toBe(true);
      }),
    );
  });
});
