/**
 * `soci pull <ref>`: pull an image into containerd through a snapshotter (soci by default), with
 * the labels a remote snapshotter needs on each layer's Prepare; lazily mounted layers are not
 * downloaded.
 */
import type { LayerReport, PullReport } from '@soci-ts/containerd-client';
import type { Command } from 'commander';
import { action } from '../action.js';
import { type Context, withOutputOptions, withRegistryOptions } from '../context.js';
import { CliError, usageError } from '../errors.js';
import type { Io } from '../io.js';
import { openRepository } from '../registry.js';
import { isLocalReference } from '../sources.js';

export const DEFAULT_CONTAINERD_ADDRESS = '/run/containerd/containerd.sock';

interface PullFlags {
  address: string;
  namespace: string;
  snapshotter: string;
  platform?: string;
  sociIndexDigest?: string;
  unpackFallback: boolean;
  json?: boolean;
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export function registerPull(program: Command, io: Io): void {
  withOutputOptions(
    withRegistryOptions(
      program
        .command('pull')
        .argument('<ref>', 'image in a registry')
        .description('pull an image into containerd; layers with a SOCI index are mounted lazily'),
    ),
  )
    .option('--address <socket>', "containerd's socket", DEFAULT_CONTAINERD_ADDRESS)
    .option('-n, --namespace <ns>', 'containerd namespace', 'default')
    .option('--snapshotter <name>', 'containerd snapshotter to unpack into', 'soci')
    .option('--platform <os/arch>', "platform to pull from a multi-platform image (default: this machine's)")
    .option('--soci-index-digest <digest>', 'use this SOCI index instead of discovering one')
    .option('--no-unpack-fallback', 'fail instead of downloading a layer the snapshotter does not mount')
    .option('--json', 'print the pull report as JSON')
    .action(
      action<PullFlags>(io, async (ctx, [ref], o) => {
        if (isLocalReference(ref!)) throw usageError(`pull needs a registry reference, not ${ref}`);
        if (o.sociIndexDigest !== undefined && !DIGEST.test(o.sociIndexDigest)) {
          throw usageError(
            `--soci-index-digest takes a digest like sha256:<64 hex>, not "${o.sociIndexDigest}"`,
          );
        }
        const { repository } = openRepository(ctx, ref!);
        if (ctx.io.isTTY) ctx.note(`pulling ${ref} with snapshotter ${o.snapshotter}`);
        // Loaded on demand: only pull needs containerd's gRPC client.
        const report = await import('../containerd-pull.js').then(({ pullIntoContainerd }) =>
          pullIntoContainerd({
            address: o.address,
            namespace: o.namespace,
            ref: ref!,
            snapshotter: o.snapshotter,
            repository,
            ...(o.platform ? { platform: o.platform } : {}),
            ...(o.sociIndexDigest ? { sociIndexDigest: o.sociIndexDigest } : {}),
            unpackFallback: o.unpackFallback,
            signal: ctx.signal,
          }),
        );
        printReport(ctx, report);
      }),
    );
}

function printReport(ctx: Context, report: PullReport): void {
  if (ctx.options.quiet && !ctx.options.json) return;
  ctx.print(report, () => {
    const lines = ctx.io.isTTY ? report.layers.map(layerLine) : [];
    lines.push(totalLine(report));
    return lines.join('\n');
  });
}

export function layerLine(layer: LayerReport): string {
  return [
    layer.digest.slice(7, 19),
    layer.mode.padEnd(8),
    formatBytes(layer.bytesFetched).padStart(10),
    `${(layer.durationMs / 1000).toFixed(2)}s`.padStart(8),
  ].join('  ');
}

export function totalLine(report: PullReport): string {
  const count = (mode: LayerReport['mode']) => report.layers.filter((l) => l.mode === mode).length;
  const present = count('present');
  return [
    `pulled ${report.name}: ${report.layers.length} layers`,
    ` (${count('remote')} remote, ${count('unpacked')} unpacked${present ? `, ${present} present` : ''}),`,
    ` ${formatBytes(report.bytesFetched)} fetched in ${(report.durationMs / 1000).toFixed(1)}s`,
  ].join('');
}

function formatBytes(n: number): string {
  if (n < 1000) return `${n} B`;
  if (n < 1e6) return `${(n / 1e3).toFixed(1)} kB`;
  if (n < 1e9) return `${(n / 1e6).toFixed(1)} MB`;
  return `${(n / 1e9).toFixed(2)} GB`;
}
