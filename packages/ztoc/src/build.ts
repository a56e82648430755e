import { CheckpointBuilder, encodeTarZinfo, encodeZinfo, type Hasher } from '@soci-ts/seekable-gzip';
import { ZTOC_VERSION } from './codec/schema.js';
import { ZtocError } from './errors.js';
import { FixedSpanHasher } from './fixed-spans.js';
import { checkLimit, resolveZtocLimits, type ZtocLimits } from './limits.js';
import type { CompressionAlgorithm, Ztoc } from './model.js';
import { nodeSha256 } from './sha256.js';
import { checkSpanLimits, spanLayout } from './span-layout.js';
import { TarIndexer } from './tar/indexer.js';

/** The reference CLI's default span size: 4 MiB. */
export const DEFAULT_SPAN_SIZE = 4 * 1024 * 1024;
export const DEFAULT_BUILD_TOOL = 'soci-ts';

export interface BuildZtocOptions {
  compression: CompressionAlgorithm;
  /** Minimum uncompressed bytes per span (gzip) or exact span size (plain tar). Default 4 MiB. */
  spanSize?: number;
  buildToolIdentifier?: string;
  /** sha256 hasher factory for span digests; defaults to node:crypto. */
  hasher?: () => Hasher;
  /**
   * The limits readers will apply ({@link DEFAULT_ZTOC_LIMITS} with these overrides): a layer
   * whose zTOC would exceed them fails with ZTOC_LIMIT_EXCEEDED instead of giving an unreadable zTOC.
   */
  limits?: Partial<ZtocLimits>;
}

/**
 * Builds the zTOC of a layer blob in one streaming pass: the blob is decompressed once, the
 * output feeds the tar walker, and span digests are hashed as the bytes go by. Memory stays
 * bounded by the checkpoints (32 KiB each) and the file table.
 */
export async function buildZtoc(source: AsyncIterable<Uint8Array>, o: BuildZtocOptions): Promise<Ztoc> {
  const spanSize = o.spanSize ?? DEFAULT_SPAN_SIZE;
  if (!Number.isSafeInteger(spanSize) || spanSize <= 0) {
    throw new ZtocError('ZTOC_INVALID_ARGUMENT', `spanSize must be a positive integer, got ${spanSize}`);
  }
  const hasher = o.hasher ?? (await nodeSha256());
  const limits = resolveZtocLimits(o.limits);
  const indexer = new TarIndexer({ limits });
  let compressedArchiveSize: number;
  let uncompressedArchiveSize: number;
  let spanDigests: string[];
  let checkpoints: Uint8Array;

  if (o.compression === 'gzip') {
    const builder = new CheckpointBuilder({ spanSize, onData: (c) => indexer.push(c), spanHasher: hasher });
    for await (const chunk of source) builder.push(chunk);
    const built = builder.finish();
    compressedArchiveSize = built.index.compressedSize;
    uncompressedArchiveSize = built.index.uncompressedSize;
    spanDigests = built.spanDigests;
    checkpoints = encodeZinfo(built.index);
  } else if (o.compression === 'uncompressed') {
    const spans = new FixedSpanHasher(spanSize, hasher);
    for await (const chunk of source) {
      spans.push(chunk);
      indexer.push(chunk);
    }
    const { size, spanDigests: digests } = spans.finish();
    compressedArchiveSize = size;
    uncompressedArchiveSize = size;
    spanDigests = digests;
    checkpoints = encodeTarZinfo({ spanSize, size });
  } else {
    throw new ZtocError(
      'ZTOC_INVALID_ARGUMENT',
      `compression must be 'gzip' or 'uncompressed', got ${String(o.compression)}`,
    );
  }
  const toc = indexer.finish();

  const ztoc: Ztoc = {
    version: ZTOC_VERSION,
    buildToolIdentifier: o.buildToolIdentifier ?? DEFAULT_BUILD_TOOL,
    compressedArchiveSize,
    uncompressedArchiveSize,
    toc,
    compressionInfo: {
      algorithm: o.compression,
      maxSpanId: spanDigests.length - 1,
      spanDigests,
      checkpoints,
    },
  };
  checkLimit(limits, 'maxSpans', spanDigests.length, 'the number of spans');
  checkSpanLimits(spanLayout(ztoc), limits);
  return ztoc;
}
