import { alignmentPrefix } from './alignment-prefix.js';
import { decodePlannedSync, planSpanDecode, type SpanPlan } from './decode-span-sync.js';
import type { GzipIndex } from './types.js';

type NodeZlib = typeof import('node:zlib');

let nodeZlib: Promise<NodeZlib | null> | undefined;

/** Node's native zlib when running in Node; null elsewhere (then the pure JS decoder is used). */
function loadNodeZlib(): Promise<NodeZlib | null> {
  nodeZlib ??= import('node:zlib').then(
    (m) => (typeof m.createInflateRaw === 'function' ? m : null),
    () => null,
  );
  return nodeZlib;
}

/**
 * Decodes (part of) one span. In Node the inflate runs in native zlib on the thread pool, so the event
 * loop stays free; spans that cross a gzip member end (rare) and non-Node runtimes use the JS decoder.
 * `compressed` is exactly the span's compressed range; `range` is relative to the span's start.
 */
export async function decodeSpan(
  index: GzipIndex,
  spanId: number,
  compressed: Uint8Array,
  range?: { offset: number; length: number },
): Promise<Uint8Array> {
  const plan = planSpanDecode(index, spanId, compressed, range);
  if (plan.length === 0) return new Uint8Array(0);
  const zlib = await loadNodeZlib();
  const out = zlib ? await inflateNative(zlib, plan, compressed) : null;
  // The JS decoder handles member boundaries and reports bad bytes with a typed error.
  return out ?? decodePlannedSync(plan, compressed);
}

/** The native path alone (internal, for tests): null where decodeSpan would fall back to JS. */
export async function decodeSpanNativeOnly(
  index: GzipIndex,
  spanId: number,
  compressed: Uint8Array,
  range?: { offset: number; length: number },
): Promise<Uint8Array | null> {
  const plan = planSpanDecode(index, spanId, compressed, range);
  const zlib = await loadNodeZlib();
  return zlib ? inflateNative(zlib, plan, compressed) : null;
}

/**
 * Native raw inflate of a span (a span starting mid-byte gets an alignment prefix, see
 * alignment-prefix.ts). Returns null when native zlib could not produce the whole range (member end
 * inside the span, or bad data), leaving the verdict to the JS decoder.
 */
function inflateNative(zlib: NodeZlib, plan: SpanPlan, compressed: Uint8Array): Promise<Uint8Array | null> {
  let dictionary = plan.window;
  let skip = 0;
  let head: Uint8Array | null = null;
  let body = compressed;
  if (plan.bits !== 0) {
    const prefix = alignmentPrefix(plan.bits, compressed[0]!, plan.window);
    dictionary = prefix.dictionary;
    skip = prefix.skip;
    head = prefix.bytes;
    body = compressed.subarray(1);
  }
  const start = skip + plan.offset;
  const need = start + plan.length;
  return new Promise((resolve) => {
    const inflater = zlib.createInflateRaw({
      dictionary,
      finishFlush: zlib.constants.Z_SYNC_FLUSH,
      chunkSize: Math.min(256 * 1024, Math.max(16 * 1024, need)),
    });
    const result = new Uint8Array(plan.length);
    let produced = 0;
    let settled = false;
    const settle = (value: Uint8Array | null) => {
      if (settled) return;
      settled = true;
      inflater.destroy();
      resolve(value);
    };
    inflater.on('data', (chunk: Buffer) => {
      const from = Math.max(0, start - produced);
      const to = Math.min(chunk.length, need - produced);
      if (to > from) result.set(chunk.subarray(from, to), produced + from - start);
      produced += chunk.length;
      if (produced >= need) settle(result);
    });
    inflater.on('end', () => settle(produced >= need ? result : null));
    inflater.on('error', () => settle(produced >= need ? result : null));
    if (head) inflater.write(head);
    inflater.end(body);
  });
}
