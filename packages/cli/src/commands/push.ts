/** `soci push <ref>`: push the stored v1 SOCI indexes of an image as referrers of its manifests. */
import { formatReference, parseReference } from '@soci-ts/oci-referrers';
import { existingV1Indexes, pushSociIndex, SOCI_INDEX_V1 } from '@soci-ts/soci-index';
import type { Command } from 'commander';
import { action } from '../action.js';
import { withSharedOptions } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { platformText } from '../platform-text.js';
import { openRepository } from '../registry.js';
import { isLocalReference } from '../sources.js';

type ExistingPolicy = 'warn' | 'skip' | 'allow';

export function registerPush(program: Command, io: Io): void {
  withSharedOptions(program.command('push').argument('<ref>', 'image in a registry'))
    .description('push the SOCI indexes of an image (built with `soci create`) to its registry')
    .option(
      '--existing-index <policy>',
      'when the registry already has a SOCI index for the image: warn, skip or allow',
      'warn',
    )
    .option('--platform <os/arch...>', 'only indexes of these platforms')
    .option('--json', 'print the result as JSON')
    .action(
      action<{ existingIndex: string; platform?: string[] }>(io, async (ctx, [ref], o) => {
        if (!['warn', 'skip', 'allow'].includes(o.existingIndex)) {
          throw usageError(`--existing-index takes warn, skip or allow, not "${o.existingIndex}"`);
        }
        const policy = o.existingIndex as ExistingPolicy;
        if (isLocalReference(ref!)) throw usageError(`push needs a registry reference, not ${ref}`);
        const canonical = formatReference(parseReference(ref!));
        const { repository } = openRepository(ctx, ref!);
        const store = await ctx.store();
        const entries = (await store.listIndexes()).filter(
          (e) =>
            e.imageRef === canonical &&
            e.artifactType === SOCI_INDEX_V1 &&
            (!o.platform?.length || o.platform.includes(platformText(e.platform))),
        );
        if (entries.length === 0) {
          throw new CliError(
            'CLI_NOT_FOUND',
            `no SOCI index for ${canonical} in ${ctx.options.root}; run \`soci create ${ref}\` first`,
          );
        }
        const progress = ctx.progress();
        const { signal } = ctx;
        const results: { digest: string; pushed: boolean }[] = [];
        for (const entry of entries) {
          // The image must be there to be referred to.
          await repository.fetchManifest(entry.imageManifestDigest, { signal });
          const existing = (
            await existingV1Indexes(repository, entry.imageManifestDigest, { signal })
          ).filter((d) => d.digest !== entry.digest);
          if (existing.length > 0 && policy !== 'allow') {
            const list = existing.map((d) => d.digest).join(', ');
            if (policy === 'skip') {
              ctx.note(`skipping ${entry.digest}: ${canonical} already has SOCI index ${list}`);
              results.push({ digest: entry.digest, pushed: false });
              continue;
            }
            ctx.io.err(
              `warning: ${canonical} already has SOCI index ${list}; pushing ${entry.digest} as well\n`,
            );
          }
          const index = await store.readSociIndex(entry.digest);
          const refs = [...index.ztocs, ...index.prefetches];
          const blobs = [];
          for (const r of refs) blobs.push(await store.readBlob(r.digest));
          const label = `${platformText(entry.platform)} ${entry.digest.slice(7, 19)}`.trim();
          const total = blobs.reduce((n, b) => n + b.length, 0);
          progress.update(entry.digest, { label, total, done: 0, state: 'pushing' });
          await pushSociIndex(
            repository,
            { manifestBytes: await store.readBlob(entry.digest), blobs },
            { signal },
          );
          progress.update(entry.digest, { done: total, state: 'done' });
          results.push({ digest: entry.digest, pushed: true });
        }
        progress.finish();
        ctx.print(results, () =>
          results.map((r) => `${r.pushed ? 'pushed' : 'skipped'} ${r.digest}`).join('\n'),
        );
      }),
    );
}
