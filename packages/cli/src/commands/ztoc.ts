/** `soci ztoc list|info|get-file`: zTOCs of the stored SOCI indexes. */
import { writeFile } from 'node:fs/promises';
import type { StoredIndex } from '@soci-ts/soci-index';
import { decodeZtoc, extractFileBytes, ztocInfo } from '@soci-ts/ztoc';
import type { Command } from 'commander';
import { action } from '../action.js';
import { type Context, withSharedOptions, withStoreOptions } from '../context.js';
import { CliError } from '../errors.js';
import type { Io } from '../io.js';
import { openSource } from '../sources.js';
import { formatTable } from '../table.js';

/** One zTOC of the store with the index and layer it belongs to. */
interface ZtocEntry {
  digest: string;
  size: number;
  layerDigest: string;
  layerMediaType: string;
  indexDigest: string;
  imageRef: string;
}

async function listZtocs(ctx: Context): Promise<ZtocEntry[]> {
  const store = await ctx.store();
  const seen = new Map<string, ZtocEntry>();
  for (const entry of await store.listIndexes()) {
    const index = await store.readSociIndex(entry.digest);
    for (const z of index.ztocs) {
      if (!seen.has(z.digest))
        seen.set(z.digest, { ...z, indexDigest: entry.digest, imageRef: entry.imageRef });
    }
  }
  return [...seen.values()];
}

async function findZtoc(ctx: Context, digest: string): Promise<ZtocEntry> {
  const entry = (await listZtocs(ctx)).find((z) => z.digest === digest);
  if (!entry)
    throw new CliError('CLI_NOT_FOUND', `no zTOC ${digest} in the local store; see \`soci ztoc list\``);
  return entry;
}

export function registerZtoc(program: Command, io: Io): void {
  const ztoc = program.command('ztoc').description('inspect zTOCs in the local store');

  withStoreOptions(ztoc.command('list').alias('ls'))
    .description('list stored zTOCs')
    .option('--ztoc-digest <digest>', 'only this zTOC')
    .option('--image-ref <ref>', 'only zTOCs of indexes of this image')
    .option('--json', 'print JSON')
    .action(
      action<{ ztocDigest?: string; imageRef?: string }>(io, async (ctx, _args, o) => {
        const entries = (await listZtocs(ctx)).filter(
          (z) => (!o.ztocDigest || z.digest === o.ztocDigest) && (!o.imageRef || z.imageRef === o.imageRef),
        );
        ctx.print(entries, () =>
          formatTable(
            ['DIGEST', 'SIZE', 'LAYER DIGEST'],
            entries.map((z) => [z.digest, String(z.size), z.layerDigest]),
          ),
        );
      }),
    );

  withStoreOptions(ztoc.command('info').argument('<digest>', 'zTOC digest'))
    .description('print what a zTOC holds (same fields as the reference tool)')
    .option('--json', 'print JSON (the default output is JSON as well)')
    .action(
      action(io, async (ctx, [digest]) => {
        const bytes = await (await ctx.store()).readBlob(digest!);
        const info = ztocInfo(decodeZtoc(bytes), { size: bytes.length });
        ctx.io.out(`${JSON.stringify(info, null, 2)}\n`);
      }),
    );

  withSharedOptions(
    ztoc.command('get-file').argument('<digest>', 'zTOC digest').argument('<path>', 'file in the layer'),
  )
    .description("print a file's bytes, fetching only the spans that hold it")
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .option('--image <ref>', 'read the layer from this image instead of the one the index was built from')
    .action(
      action<{ output?: string; image?: string }>(io, async (ctx, [digest, path], o) => {
        const entry = await findZtoc(ctx, digest!);
        const z = decodeZtoc(await (await ctx.store()).readBlob(digest!));
        const source = await openSource(ctx, o.image ?? entry.imageRef);
        const layer = {
          mediaType: entry.layerMediaType,
          digest: entry.layerDigest,
          size: z.compressedArchiveSize,
        };
        const bytes = await extractFileBytes(z, path!, (start, end) =>
          source.fetchBlobRange(layer, start, end, { signal: ctx.signal }),
        );
        if (o.output) await writeFile(o.output, bytes);
        else ctx.io.out(bytes);
      }),
    );
}

export type { StoredIndex };
