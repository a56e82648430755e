/** `soci convert <src> <dst>`: v2 SOCI conversion; the image index at dst lists the SOCI indexes. */
import { formatReference, parseReference } from '@soci-ts/oci-referrers';
import { convertImage, loadImageRoot, pushConvertedImage } from '@soci-ts/soci-index';
import type { Command } from 'commander';
import { action } from '../action.js';
import { type Context, withSharedOptions } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { platformText } from '../platform-text.js';
import { openRepository } from '../registry.js';
import { isLocalReference, openSource } from '../sources.js';
import { ztocBuilder } from '../workers.js';
import {
  type BuildFlags,
  buildOptionsFrom,
  layerProgress,
  notePrefetchMissing,
  selectImages,
  withBuildOptions,
} from './create.js';

export function registerConvert(program: Command, io: Io): void {
  withBuildOptions(
    withSharedOptions(
      program
        .command('convert')
        .argument('<src>', 'image: registry ref, oci:<dir>[:tag] or oci-archive:<file>[:tag]')
        .argument('<dst>', 'registry ref to push the converted image to'),
    ),
  )
    .description('build v2 SOCI indexes and push the image with them (layers are not re-uploaded)')
    .option(
      '--src-user <user:password>',
      "credentials for <src>'s registry when it is not <dst>'s (default: docker config.json); -u is <dst>'s",
    )
    .option('--json', 'print the result as JSON')
    .action(
      action<BuildFlags & { srcUser?: string }>(io, async (ctx, [src, dst], flags) => {
        if (isLocalReference(dst!))
          throw usageError(`convert pushes to a registry; ${dst} is not a registry reference`);
        const { ref: target, repository } = openRepository(ctx, dst!);
        if (!target.tag) throw usageError(`name the destination with a tag (${dst} has only a digest)`);
        useSourceCredentials(ctx, src!, target.registry, flags.srcUser);
        const source = await openSource(ctx, src!);
        const { signal } = ctx;
        const root = await loadImageRoot(source, { signal });
        const images = await selectImages(source, root, flags, signal);
        const progress = ctx.progress();
        const onProgress = new Map(
          images.map((image) => [image.descriptor.digest, layerProgress(progress, image)]),
        );
        const buildOptions = await buildOptionsFrom(flags);
        const converted = await convertImage(source, root, images, {
          ...buildOptions,
          ztocBuilder: ztocBuilder(ctx, buildOptions.concurrency),
          onProgress: (p) => onProgress.get(p.imageDigest)?.(p),
          signal,
        });
        const store = await ctx.store();
        for (const p of converted.platforms) {
          notePrefetchMissing(ctx, p.image, p.built.prefetchMissing);
          await store.addIndex({
            manifestBytes: p.built.manifest.bytes,
            blobs: p.built.blobs,
            imageManifestDigest: p.manifest.descriptor.digest,
            imageRef: formatReference(target),
            platform: p.image.platform,
          });
        }
        let uploaded = 0;
        const pushed = await pushConvertedImage(source, repository, converted, target.tag, {
          onStep: (step) => {
            if (step.result === 'uploaded') uploaded++;
          },
          signal,
        });
        progress.finish();
        const result = {
          digest: pushed.digest,
          reference: formatReference(target),
          uploadedLayers: uploaded,
          platforms: converted.platforms.map((p) => ({
            platform: platformText(p.image.platform),
            manifest: p.manifest.descriptor.digest,
            sociIndex: p.built.manifest.descriptor.digest,
          })),
        };
        ctx.print(result, () =>
          [
            `${result.reference}@${result.digest}`,
            ...result.platforms.map(
              (p) => `  ${p.platform}  manifest ${p.manifest}  soci index ${p.sociIndex}`,
            ),
          ].join('\n'),
        );
      }),
    );
}

/**
 * -u (and --password-stdin) are the destination's: the registry pushed to is the one that asks
 * for them. A source in another registry gets --src-user, or docker config.json alone, so that
 * the destination's password never goes to the source's token server.
 */
function useSourceCredentials(
  ctx: Context,
  src: string,
  dstRegistry: string,
  srcUser: string | undefined,
): void {
  const registry =
    isLocalReference(src) || ctx.options.containerdAddress ? undefined : parseReference(src).registry;
  if (registry === undefined || registry === dstRegistry) {
    if (srcUser !== undefined) {
      throw usageError(`--src-user is for a source in another registry than ${dstRegistry}; use -u`);
    }
    return;
  }
  if (srcUser !== undefined && !srcUser.includes(':')) {
    throw usageError('--src-user takes user:password');
  }
  ctx.setUser(registry, srcUser);
}
