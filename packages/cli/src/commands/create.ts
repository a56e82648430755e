/** `soci create <ref>`: build a SOCI index (v1) for an image and keep it in the local store. */

import { readFile } from 'node:fs/promises';
import { hostPlatform, parsePlatform, platformMatches } from '@soci-ts/oci-referrers';
import {
  type BuildProgress,
  buildSociIndex,
  DEFAULT_MIN_LAYER_SIZE,
  DEFAULT_SPAN_SIZE,
  type ImageRoot,
  type ImageSource,
  loadImageRoot,
  loadPlatformImage,
  type PlatformImage,
  type PrefetchEntry,
  parsePrefetchList,
  platformEntries,
  selectPlatformImage,
} from '@soci-ts/soci-index';
import type { Command } from 'commander';
import { action } from '../action.js';
import { type Context, withSharedOptions } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { platformText } from '../platform-text.js';
import type { Progress } from '../progress.js';
import { openSource } from '../sources.js';
import { ztocBuilder } from '../workers.js';

export interface BuildFlags {
  spanSize: string;
  minLayerSize: string;
  platform?: string[];
  allPlatforms?: boolean;
  concurrency?: string;
  prefetch?: string;
}

function parseSize(text: string, flag: string): number {
  const m = /^(\d+)\s*([kmg]i?b?)?$/i.exec(text.trim());
  if (!m) throw usageError(`${flag} takes a byte count like 4194304, 64KiB or 4MiB, not "${text}"`);
  const unit = (m[2] ?? '').toLowerCase()[0];
  const scale = unit === 'k' ? 1024 : unit === 'm' ? 1024 ** 2 : unit === 'g' ? 1024 ** 3 : 1;
  return Number(m[1]) * scale;
}

/** Adds the flags of index building (create and convert). */
export function withBuildOptions(cmd: Command): Command {
  return cmd
    .option('--span-size <bytes>', 'uncompressed bytes per span', String(DEFAULT_SPAN_SIZE))
    .option(
      '--min-layer-size <bytes>',
      'layers smaller than this get no zTOC',
      String(DEFAULT_MIN_LAYER_SIZE),
    )
    .option('--platform <os/arch...>', 'platforms to index (default: this machine)')
    .option('--all-platforms', 'index every platform of the image')
    .option('--concurrency <n>', 'layers built at once (default: number of cores)')
    .option(
      '--prefetch <file>',
      'paths a container reads first (one per line, directories included): their spans are fetched first',
    );
}

export async function buildOptionsFrom(flags: BuildFlags) {
  const concurrency = flags.concurrency !== undefined ? Number(flags.concurrency) : undefined;
  if (concurrency !== undefined && !(Number.isInteger(concurrency) && concurrency > 0)) {
    throw usageError(`--concurrency takes a positive integer, not "${flags.concurrency}"`);
  }
  const spanSize = parseSize(flags.spanSize, '--span-size');
  if (spanSize <= 0) throw usageError('--span-size must be at least 1 byte');
  return {
    spanSize,
    minLayerSize: parseSize(flags.minLayerSize, '--min-layer-size'),
    ...(concurrency !== undefined ? { concurrency } : {}),
    ...(flags.prefetch !== undefined ? { prefetch: await readPrefetchList(flags.prefetch) } : {}),
  };
}

async function readPrefetchList(file: string): Promise<PrefetchEntry[]> {
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    throw usageError(`cannot read the --prefetch list ${file}: ${(err as Error).message}`);
  }
  let paths: PrefetchEntry[];
  try {
    paths = parsePrefetchList(text);
  } catch (err) {
    throw usageError(`--prefetch list ${file}: ${(err as Error).message}`);
  }
  if (paths.length === 0) {
    throw usageError(`the --prefetch list ${file} names no paths; write one path per line`);
  }
  return paths;
}

/** Says which listed prefetch paths an image lacks (a list from another image or version). */
export function notePrefetchMissing(ctx: Context, image: PlatformImage, missing: string[]): void {
  if (missing.length === 0) return;
  const shown = missing.slice(0, 5).join(', ');
  const more = missing.length > 5 ? ` and ${missing.length - 5} more` : '';
  ctx.note(
    `warning: ${missing.length} --prefetch entries name no file data of ${image.descriptor.digest}: ${shown}${more}`,
  );
}

/** The platform images a build is about, per --platform / --all-platforms. */
export async function selectImages(
  source: ImageSource,
  root: ImageRoot,
  flags: BuildFlags,
  signal?: AbortSignal,
): Promise<PlatformImage[]> {
  if (root.kind === 'manifest') {
    const wanted = (flags.platform ?? []).map(parsePlatform);
    if (wanted.length > 0 && !wanted.some((p) => platformMatches(root.image.platform, p))) {
      throw new CliError(
        'CLI_PLATFORM_NOT_FOUND',
        `${source.reference} is a single-platform image for ${platformText(root.image.platform)}, not ${flags.platform!.join(', ')}`,
      );
    }
    return [root.image];
  }
  if (flags.allPlatforms) {
    return Promise.all(
      platformEntries(root.index).map((d) => loadPlatformImage(source, d, d.platform, { signal })),
    );
  }
  const wanted = flags.platform?.length ? flags.platform.map(parsePlatform) : [hostPlatform()];
  return Promise.all(wanted.map((p) => selectPlatformImage(source, root, p, { signal })));
}

/** Progress rows for one image's layers. */
export function layerProgress(progress: Progress, image: PlatformImage) {
  const prefix = image.platform ? `${platformText(image.platform)} ` : '';
  return (p: BuildProgress) =>
    progress.update(`${image.descriptor.digest}/${p.layerIndex}`, {
      label: `${prefix}${p.layer.digest.slice(7, 19)}`,
      total: p.layer.size,
      done: p.bytesRead,
      state: p.state === 'skipped' ? 'skipped (small)' : p.state,
    });
}

/** Builds v1 indexes for the selected platforms of `ref` and stores them. */
export async function createIndexes(ctx: Context, ref: string, flags: BuildFlags) {
  const source = await openSource(ctx, ref);
  const options = await buildOptionsFrom(flags);
  const { signal } = ctx;
  const images = await selectImages(source, await loadImageRoot(source, { signal }), flags, signal);
  const progress = ctx.progress();
  const store = await ctx.store();
  const builder = ztocBuilder(ctx, options.concurrency);
  const created = [];
  for (const image of images) {
    const built = await buildSociIndex(source, image, {
      ...options,
      ztocBuilder: builder,
      version: 'v1',
      onProgress: layerProgress(progress, image),
      signal,
    });
    notePrefetchMissing(ctx, image, built.prefetchMissing);
    const stored = await store.addIndex({
      manifestBytes: built.manifest.bytes,
      blobs: built.blobs,
      imageManifestDigest: image.descriptor.digest,
      imageRef: source.reference,
      platform: image.platform,
    });
    created.push({
      ...stored,
      layers: built.layers.map((l) => ({
        digest: l.layer.digest,
        ztoc: l.ztoc?.ref.digest ?? null,
        skipped: l.skipped ?? null,
      })),
      prefetches: built.index.prefetches.length,
      prefetchMissing: built.prefetchMissing,
    });
  }
  progress.finish();
  return created;
}

export function registerCreate(program: Command, io: Io): void {
  withBuildOptions(
    withSharedOptions(
      program
        .command('create')
        .argument('<ref>', 'image: registry ref, oci:<dir>[:tag] or oci-archive:<file>[:tag]'),
    ),
  )
    .description('build a SOCI index for an image into the local store')
    .option('--json', 'print the result as JSON')
    .action(
      action<BuildFlags>(io, async (ctx, [ref], flags) => {
        const created = await createIndexes(ctx, ref!, flags);
        ctx.print(created, () =>
          created
            .map(
              (c) =>
                `${c.digest}  ${platformText(c.platform)}  ${c.layers.filter((l) => l.ztoc).length} zTOC(s)`,
            )
            .join('\n'),
        );
      }),
    );
}
