// A name may begin with U+FEFF (a byte-order mark is a valid file name character). TextDecoder
// drops a leading BOM unless told not to, which would give the entry another name: a different
// file tree from the one GNU tar writes. Names come from GNU tar here, in all three places a tar
// keeps them (ustar name, GNU long name, PAX path), and must survive the zTOC codec too.
import { mkdirSync, mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildZtoc, decodeZtoc, encodeZtoc } from '../src/index.js';
import { chunked, run } from './tools.js';

const BOM = '\uFEFF';

describe('names that begin with a byte-order mark', () => {
  for (const format of ['ustar', 'gnu', 'pax']) {
    it(`keep it (${format} tar from GNU tar, then the zTOC codec)`, async () => {
      const root = mkdtempSync(join(tmpdir(), 'ztoc-bom-'));
      const tree = join(root, 'tree');
      const long = `${BOM}${'l'.repeat(120)}`; // over 100 bytes: a GNU long name or a PAX path
      mkdirSync(join(tree, `${BOM}dir`), { recursive: true });
      writeFileSync(join(tree, `${BOM}dir`, `${BOM}file`), 'x');
      if (format !== 'ustar') writeFileSync(join(tree, long), 'y');
      // Named without ./ in front, so that each name field begins with the mark.
      const entries = format === 'ustar' ? [`${BOM}dir`] : [`${BOM}dir`, long];
      const tar = run('tar', ['-C', tree, `--format=${format}`, '-cf', '-', ...entries]);
      const ztoc = await buildZtoc(chunked(tar), { compression: 'uncompressed', spanSize: 65536 });
      const names = ztoc.toc.map((e) => e.name);
      expect(names).toContain(`${BOM}dir/${BOM}file`);
      expect(names).toContain(`${BOM}dir/`);
      if (format !== 'ustar') expect(names).toContain(long);
      expect(decodeZtoc(encodeZtoc(ztoc)).toc.map((e) => e.name)).toEqual(names);
    });
  }
});
