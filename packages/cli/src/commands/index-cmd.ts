/** `soci index list|info|rm`: the SOCI indexes in the local store. */
import type { StoredIndex } from '@soci-ts/soci-index';
import type { Command } from 'commander';
import { action } from '../action.js';
import { withStoreOptions } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { platformText } from '../platform-text.js';
import { formatTable } from '../table.js';

function matches(
  entry: StoredIndex,
  o: { ref?: string; platform?: string; manifestDigest?: string },
): boolean {
  if (o.ref && entry.imageRef !== o.ref) return false;
  if (o.platform && platformText(entry.platform) !== o.platform) return false;
  if (o.manifestDigest && entry.imageManifestDigest !== o.manifestDigest) return false;
  return true;
}

export function registerIndex(program: Command, io: Io): void {
  const index = program.command('index').description('manage SOCI indexes in the local store');

  withStoreOptions(index.command('list').alias('ls'))
    .description('list stored SOCI indexes')
    .option('--ref <ref>', 'only indexes of this image reference')
    .option('--platform <os/arch>', 'only indexes of this platform')
    .option('--json', 'print JSON')
    .action(
      action<{ ref?: string; platform?: string }>(io, async (ctx, _args, o) => {
        const entries = (await (await ctx.store()).listIndexes()).filter((e) => matches(e, o));
        ctx.print(entries, () =>
          formatTable(
            ['DIGEST', 'SIZE', 'IMAGE REF', 'PLATFORM', 'MANIFEST DIGEST', 'VERSION', 'CREATED'],
            entries.map((e) => [
              e.digest,
              String(e.size),
              e.imageRef,
              platformText(e.platform),
              e.imageManifestDigest,
              e.artifactType.includes('v1') ? 'v1' : 'v2',
              e.created,
            ]),
          ),
        );
      }),
    );

  withStoreOptions(index.command('info').argument('<digest>', 'SOCI index digest'))
    .description('print a stored SOCI index manifest')
    .option('--json', 'print JSON (the manifest is JSON either way)')
    .action(
      action(io, async (ctx, [digest]) => {
        const store = await ctx.store();
        const bytes = await store.readBlob(digest!);
        await store.readSociIndex(digest!); // refuses a blob that is not a SOCI index
        ctx.io.out(`${JSON.stringify(JSON.parse(new TextDecoder().decode(bytes)), null, 2)}\n`);
      }),
    );

  withStoreOptions(index.command('rm').alias('remove').argument('[digests...]', 'SOCI index digests'))
    .description('remove SOCI indexes (and zTOCs no other index uses) from the local store')
    .option('--ref <ref>', 'remove every index of this image reference')
    .action(
      action(io, async (ctx, digests, o) => {
        if (digests.length === 0 && !o.ref) {
          throw usageError('name the indexes to remove: soci index rm <digest>... or --ref <image>');
        }
        const wanted = new Set(digests);
        const removed = await (await ctx.store()).removeIndexes(
          (e) => wanted.has(e.digest) || (o.ref !== undefined && e.imageRef === o.ref),
        );
        const missing = digests.filter((d) => !removed.some((r) => r.digest === d));
        for (const r of removed) ctx.note(`removed ${r.digest}`);
        if (missing.length > 0) {
          throw new CliError(
            'CLI_NOT_FOUND',
            `no stored index ${missing.join(', ')}; see \`soci index list\``,
          );
        }
      }),
    );
}
