/**
 * Fuzz targets: each takes untrusted bytes, runs one parser of soci-ts on them and checks a few
 * invariants of what it returns. A typed error of the owning package (`expected`) is a correct
 * answer to bad input; any other exception (TypeError, RangeError, a failed invariant) is a crash.
 * Imported from the packages' TypeScript sources, so internal parsers can be targeted too.
 */

import {
  InvalidChallengeError,
  parseChallenges,
  preferredChallenge,
} from '../../packages/oci-referrers/src/challenge.js';
import { GzipHeaderParser } from '../../packages/seekable-gzip/src/gzip-header.js';
import {
  decodeTarZinfo,
  decodeZinfo,
  SeekableGzipError,
  spanCount,
  spanForOffset,
  spanRange,
  uncompressedSpanCount,
  uncompressedSpanRange,
} from '../../packages/seekable-gzip/src/index.js';
import {
  parseImageManifest,
  parseIndexManifest,
  parsePrefetch,
  SociIndexError,
} from '../../packages/soci-index/src/index.js';
import { spansForRange, TarIndexer, ZtocError, ZtocReader, ztocInfo } from '../../packages/ztoc/src/index.js';

export interface FuzzTarget {
  /** What the target parses, for the runner's listing. */
  about: string;
  /** Inputs are JSON text: the mutator also edits them as JSON. */
  json?: boolean;
  /** Inputs are tar streams: the mutator fixes header checksums after most edits. */
  tar?: boolean;
  run(data: Uint8Array): void;
  expected(error: unknown): boolean;
}

/** An invariant of a parser's output that did not hold: always a crash. */
class InvariantError extends Error {}

function invariant(ok: boolean, what: string): void {
  if (!ok) throw new InvariantError(what);
}

const isGzipError = (e: unknown) => e instanceof SeekableGzipError;
const isZtocError = (e: unknown) => e instanceof ZtocError;
const isSociIndexError = (e: unknown) => e instanceof SociIndexError;
const utf8 = new TextDecoder();

/** Splits `data` at a point taken from its own bytes, so chunk borders move with the input. */
function twoChunks(data: Uint8Array): [Uint8Array, Uint8Array] {
  const cut = data.length === 0 ? 0 : (data[data.length - 1]! * 7) % (data.length + 1);
  return [data.subarray(0, cut), data.subarray(cut)];
}

/** Reads the int64 at `pos` (little-endian) clamped into a safe, non-negative size. */
function sizeAt(data: Uint8Array, pos: number): number {
  const view = new DataView(data.buffer, data.byteOffset, data.byteLength);
  return Number(view.getBigUint64(pos, true) & 0x1f_ffff_ffff_ffffn);
}

export const targets: Record<string, FuzzTarget> = {
  'gzip-header': {
    about: 'gzip member header (RFC 1952: FEXTRA, FNAME, FCOMMENT, FHCRC), fed in two chunks',
    run(data) {
      const parser = new GzipHeaderParser();
      const [a, b] = twoChunks(data);
      let end = parser.feed(a, 0, a.length);
      if (end < 0) {
        end = parser.feed(b, 0, b.length);
        invariant(end === -1 || (end >= 0 && end <= b.length), `end ${end} outside the second chunk`);
      } else {
        invariant(end <= a.length, `end ${end} outside the first chunk`);
      }
    },
    expected: isGzipError,
  },

  zinfo: {
    about:
      'zinfo gzip checkpoints (v1 and v2 layouts); input = int64 compressed size, int64 uncompressed size, blob',
    run(data) {
      if (data.length < 16) return;
      const sizes = { compressedSize: sizeAt(data, 0), uncompressedSize: sizeAt(data, 8) };
      const index = decodeZinfo(data.subarray(16), sizes);
      const count = spanCount(index);
      invariant(count >= 1, 'a gzip index without spans');
      let previousEnd = 0;
      for (let id = 0; id < count; id++) {
        const r = spanRange(index, id);
        invariant(
          r.compressedStart >= 0 && r.compressedStart <= r.compressedEnd,
          `span ${id} compressed range`,
        );
        invariant(r.compressedEnd <= index.compressedSize, `span ${id} ends past the blob`);
        invariant(r.uncompressedStart === previousEnd, `span ${id} does not follow the previous one`);
        invariant(r.uncompressedStart <= r.uncompressedEnd, `span ${id} uncompressed range`);
        previousEnd = r.uncompressedEnd;
        if (r.uncompressedStart < r.uncompressedEnd) {
          invariant(spanForOffset(index, r.uncompressedStart) === id, `span ${id} is not found by its start`);
        }
      }
      invariant(previousEnd === index.uncompressedSize, 'spans do not cover the stream');
    },
    expected: isGzipError,
  },

  'tar-zinfo': {
    about: 'TarZinfo checkpoints of plain-tar layers (flatbuffer, or 20 raw bytes)',
    run(data) {
      const z = decodeTarZinfo(data);
      invariant(Number.isSafeInteger(z.spanSize) && z.spanSize >= 0, 'span size');
      invariant(Number.isSafeInteger(z.size) && z.size >= 0, 'size');
      if (z.spanSize === 0 || z.size / z.spanSize > 1e6) return;
      const count = uncompressedSpanCount(z.size, z.spanSize);
      if (count > 0)
        invariant(uncompressedSpanRange(z.size, z.spanSize, count - 1).compressedEnd === z.size, 'last span');
    },
    expected: isGzipError,
  },

  ztoc: {
    about: 'zTOC flatbuffer: ZtocReader, every entry, name lookup, span plans, soci ztoc info',
    run(data) {
      const reader = new ZtocReader(data);
      reader.findIndex('etc/passwd');
      const ztoc = reader.toZtoc();
      for (const f of ztoc.toc) {
        invariant(
          f.uncompressedOffset + f.uncompressedSize <= ztoc.uncompressedArchiveSize,
          `${f.name} past the end`,
        );
      }
      const info = ztocInfo(ztoc);
      invariant(info.num_spans === reader.spanCount, 'span count');
      const size = ztoc.uncompressedArchiveSize;
      if (size > 0) {
        const plan = spansForRange(ztoc, size - 1, 1);
        invariant(plan.compressed.start <= plan.compressed.end, 'plan range');
        invariant(plan.compressed.end <= ztoc.compressedArchiveSize, 'plan past the blob');
      }
    },
    expected: isZtocError,
  },

  tar: {
    about: 'tar stream walker (ustar, GNU long names and base-256, PAX x/g, star), fed in two chunks',
    tar: true,
    run(data) {
      const indexer = new TarIndexer();
      const [a, b] = twoChunks(data);
      indexer.push(a);
      indexer.push(b);
      const entries = indexer.finish();
      let previous = -1;
      for (const e of entries) {
        invariant(e.uncompressedOffset > previous, `entry ${e.name} is not after the previous one`);
        invariant(e.uncompressedOffset + e.uncompressedSize <= indexer.size, `entry ${e.name} past the end`);
        previous = e.uncompressedOffset;
      }
    },
    expected: isZtocError,
  },

  'soci-index': {
    about: 'SOCI index manifest JSON (v1 and v2)',
    json: true,
    run(data) {
      const index = parseIndexManifest(data);
      for (const z of index.ztocs) {
        invariant(
          typeof z.layerDigest === 'string' && typeof z.layerMediaType === 'string',
          'zTOC ref fields',
        );
      }
      for (const [k, v] of Object.entries(index.extraAnnotations ?? {})) {
        invariant(typeof v === 'string', `annotation ${k} is not a string`);
      }
    },
    expected: isSociIndexError,
  },

  'image-manifest': {
    about: 'image manifest JSON (OCI and Docker schema 2)',
    json: true,
    run(data) {
      const manifest = parseImageManifest(data);
      for (const layer of manifest.layers) {
        invariant(typeof layer.digest === 'string' && Number.isSafeInteger(layer.size), 'layer descriptor');
      }
    },
    expected: isSociIndexError,
  },

  prefetch: {
    about: 'SOCI prefetch artifact JSON',
    json: true,
    run(data) {
      for (const s of parsePrefetch(utf8.decode(data))) {
        invariant(s.startSpan >= 0 && s.startSpan <= s.endSpan, 'span range');
      }
    },
    expected: isSociIndexError,
  },

  'www-authenticate': {
    about: 'WWW-Authenticate challenge lists of a 401 (each input line one header value)',
    run(data) {
      const headers = utf8.decode(data).split('\n');
      const challenges = parseChallenges(headers);
      for (const c of challenges) {
        invariant(c.scheme.length > 0 && c.scheme === c.scheme.toLowerCase(), 'scheme is a lower-case token');
        for (const name of Object.keys(c.params))
          invariant(name === name.toLowerCase(), 'parameter names lower case');
      }
      const chosen = preferredChallenge(challenges);
      invariant(
        chosen === undefined || ['basic', 'bearer'].includes(chosen.scheme),
        'only Basic or Bearer is answered',
      );
    },
    expected: (error) => error instanceof InvalidChallengeError,
  },
};
