/** `soci cat <ref> <path>`: one file of the image's merged tree, read through its SOCI index. */
import { writeFile } from 'node:fs/promises';
import { hostPlatform, parsePlatform } from '@soci-ts/oci-referrers';
import {
  findSociIndex,
  ImageFiles,
  loadImageRoot,
  RegistrySource,
  type SociIndex,
  selectPlatformImage,
} from '@soci-ts/soci-index';
import type { Command } from 'commander';
import { action } from '../action.js';
import { withSharedOptions } from '../context.js';
import { CliError } from '../errors.js';
import type { Io } from '../io.js';
import { openSource } from '../sources.js';

export function registerCat(program: Command, io: Io): void {
  withSharedOptions(program.command('cat').argument('<ref>', 'image').argument('<path>', 'file in the image'))
    .description('print a file of an image through its SOCI index, without pulling the image')
    .option('--platform <os/arch>', 'platform of a multi-platform image (default: this machine)')
    .option('--index <digest>', 'use this SOCI index')
    .option('-o, --output <file>', 'write to a file instead of stdout')
    .action(
      action<{ platform?: string; index?: string; output?: string }>(io, async (ctx, [ref, path], o) => {
        const source = await openSource(ctx, ref!);
        const { signal } = ctx;
        const root = await loadImageRoot(source, { signal });
        const image = await selectPlatformImage(
          source,
          root,
          o.platform ? parsePlatform(o.platform) : hostPlatform(),
          { signal },
        );
        const store = await ctx.store();
        // A stored index is used first (no registry round trip); else discovery in the registry.
        const stored = (await store.listIndexes()).find((e) =>
          o.index ? e.digest === o.index : e.imageManifestDigest === image.descriptor.digest,
        );
        let index: SociIndex | undefined;
        let readZtoc = (digest: string) => store.readBlob(digest, { signal });
        if (stored) index = await store.readSociIndex(stored.digest, { signal });
        else if (source instanceof RegistrySource) {
          const found = await findSociIndex(
            source.repository,
            image.descriptor.digest,
            o.index ? { indexDigest: o.index, signal } : { signal },
          );
          index = found?.index;
          readZtoc = (digest) => source.repository.fetchBlobBytes(digest, { signal });
        }
        if (!index) {
          throw new CliError(
            'CLI_NOT_FOUND',
            `${ref} has no SOCI index (locally or in the registry); run \`soci create\` or \`soci convert\` first`,
          );
        }
        const files = await ImageFiles.open(source, image, index, readZtoc, { signal });
        const bytes = await files.readFile(path!, { signal });
        if (o.output) await writeFile(o.output, bytes);
        else ctx.io.out(bytes);
      }),
    );
}
