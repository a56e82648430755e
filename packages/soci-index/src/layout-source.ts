/** Reads images from an OCI image layout directory (`oci:<dir>[:<tag>]`). */

import { createReadStream } from 'node:fs';
import { open, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSha256Digest } from '@soci-ts/oci-referrers';

import type { AbortOptions } from './abort.js';
import { SociIndexError } from './errors.js';

import type { Descriptor, ImageIndex } from './oci.js';
import type { ImageSource } from './source.js';

const REF_NAME = 'org.opencontainers.image.ref.name';

/**
 * Picks the entry of a layout's index.json that a tag (or digest) names; without one, the
 * only entry. Shared by the layout and oci-archive sources.
 */
export function pickLayoutEntry(
  index: ImageIndex,
  tagOrDigest: string | undefined,
  where: string,
): Descriptor {
  const entries = index.manifests ?? [];
  if (tagOrDigest === undefined) {
    if (entries.length === 1) return entries[0]!;
    throw new SociIndexError(
      'INDEX_INVALID_SOURCE',
      `${where} holds ${entries.length} images; name one as ${where}:<tag>`,
    );
  }
  const hit = isSha256Digest(tagOrDigest)
    ? entries.find((d) => d.digest === tagOrDigest)
    : entries.find((d) => d.annotations?.[REF_NAME] === tagOrDigest);
  if (!hit) {
    const tags = entries.map((d) => d.annotations?.[REF_NAME]).filter(Boolean);
    throw new SociIndexError(
      'INDEX_NOT_FOUND',
      `${where} has no image "${tagOrDigest}"${tags.length ? ` (tags: ${tags.join(', ')})` : ''}`,
    );
  }
  return hit;
}

export function parseLayoutIndex(bytes: Uint8Array | string, where: string): ImageIndex {
  try {
    const index = JSON.parse(
      typeof bytes === 'string' ? bytes : new TextDecoder().decode(bytes),
    ) as ImageIndex;
    if (!Array.isArray(index.manifests)) throw new Error('no manifests list');
    return index;
  } catch (err) {
    throw new SociIndexError(
      'INDEX_INVALID_SOURCE',
      `${where} is not an OCI image layout (index.json: ${(err as Error).message})`,
    );
  }
}

export class LayoutSource implements ImageSource {
  readonly reference: string;

  constructor(
    private readonly dir: string,
    private readonly tag?: string,
  ) {
    this.reference = `oci:${dir}${tag !== undefined ? `:${tag}` : ''}`;
  }

  async resolve(): Promise<Descriptor> {
    let text: string;
    try {
      text = await readFile(join(this.dir, 'index.json'), 'utf8');
    } catch {
      throw new SociIndexError('INDEX_NOT_FOUND', `${this.dir} is not an OCI image layout (no index.json)`);
    }
    return pickLayoutEntry(parseLayoutIndex(text, this.dir), this.tag, `oci:${this.dir}`);
  }

  fetchManifest(descriptor: Descriptor): Promise<Uint8Array> {
    return readFile(this.blobPath(descriptor)).catch((err) => this.missing(descriptor, err));
  }

  async *fetchBlob(descriptor: Descriptor, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    const stream = createReadStream(this.blobPath(descriptor), {
      highWaterMark: 1 << 20,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    try {
      for await (const chunk of stream) yield chunk as Uint8Array;
    } catch (err) {
      this.missing(descriptor, err);
    }
  }

  async fetchBlobRange(descriptor: Descriptor, start: number, end: number): Promise<Uint8Array> {
    const handle = await open(this.blobPath(descriptor), 'r').catch((err) => this.missing(descriptor, err));
    try {
      const buffer = Buffer.alloc(end - start);
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, start);
      return buffer.subarray(0, bytesRead);
    } finally {
      await handle.close();
    }
  }

  private blobPath(descriptor: Descriptor): string {
    const [algorithm, hex] = descriptor.digest.split(':');
    if (!algorithm || !hex || hex.includes('/')) {
      throw new SociIndexError(
        'INDEX_INVALID_SOURCE',
        `bad digest ${descriptor.digest} in ${this.reference}`,
      );
    }
    return join(this.dir, 'blobs', algorithm, hex);
  }

  private missing(descriptor: Descriptor, err: unknown): never {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') {
      throw new SociIndexError('INDEX_NOT_FOUND', `${this.reference} has no blob ${descriptor.digest}`);
    }
    throw err;
  }
}
