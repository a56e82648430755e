/**
 * Reads images from an oci-archive (`oci-archive:<file>[:<tag>]`): a tar of an OCI image
 * layout. The tar is scanned once for member offsets; blobs are then read in place.
 */
import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { AbortOptions } from './abort.js';
import { SociIndexError } from './errors.js';
import { parseLayoutIndex, pickLayoutEntry } from './layout-source.js';
import type { Descriptor } from './oci.js';
import type { ImageSource } from './source.js';

interface Member {
  offset: number;
  size: number;
}

const BLOCK = 512;

function field(header: Buffer, start: number, length: number): string {
  const raw = header.subarray(start, start + length);
  const end = raw.indexOf(0);
  return raw.subarray(0, end < 0 ? length : end).toString('utf8');
}

function octal(header: Buffer, start: number, length: number): number {
  // GNU base-256 encoding for large sizes: high bit of the first byte set.
  if ((header[start]! & 0x80) !== 0) {
    let value = header[start]! & 0x7f;
    for (let i = 1; i < length; i++) value = value * 256 + header[start + i]!;
    return value;
  }
  const text = field(header, start, length).trim();
  return text ? Number.parseInt(text, 8) : 0;
}

function normalize(name: string): string {
  return name.replace(/^(\.\/)+/, '').replace(/^\/+/, '');
}

/** Regular files of a tar file by normalized path. */
async function scanTar(path: string): Promise<Map<string, Member>> {
  const handle = await open(path, 'r').catch((err) => {
    throw new SociIndexError('INDEX_NOT_FOUND', `cannot open oci-archive ${path}: ${(err as Error).message}`);
  });
  const members = new Map<string, Member>();
  try {
    const { size: fileSize } = await handle.stat();
    const header = Buffer.alloc(BLOCK);
    let offset = 0;
    let longName: string | undefined;
    while (offset + BLOCK <= fileSize) {
      await handle.read(header, 0, BLOCK, offset);
      if (header.every((b) => b === 0)) break;
      const size = octal(header, 124, 12);
      const type = String.fromCharCode(header[156]!);
      const dataOffset = offset + BLOCK;
      if (type === 'x' || type === 'L') {
        const data = Buffer.alloc(size);
        await handle.read(data, 0, size, dataOffset);
        if (type === 'L') longName = field(data, 0, size);
        else {
          const m = /(?:^|\n)\d+ path=([^\n]*)\n/.exec(data.toString('utf8'));
          if (m) longName = m[1];
        }
      } else {
        const prefix = field(header, 345, 155);
        const name = longName ?? (prefix ? `${prefix}/${field(header, 0, 100)}` : field(header, 0, 100));
        longName = undefined;
        if (type === '0' || type === '\0') members.set(normalize(name), { offset: dataOffset, size });
      }
      offset = dataOffset + Math.ceil(size / BLOCK) * BLOCK;
    }
  } finally {
    await handle.close();
  }
  return members;
}

export class ArchiveSource implements ImageSource {
  readonly reference: string;
  private members?: Promise<Map<string, Member>>;

  constructor(
    private readonly file: string,
    private readonly tag?: string,
  ) {
    this.reference = `oci-archive:${file}${tag !== undefined ? `:${tag}` : ''}`;
  }

  async resolve(): Promise<Descriptor> {
    const index = parseLayoutIndex(await this.readMember('index.json'), this.reference);
    return pickLayoutEntry(index, this.tag, `oci-archive:${this.file}`);
  }

  fetchManifest(descriptor: Descriptor): Promise<Uint8Array> {
    return this.readMember(blobName(descriptor));
  }

  async *fetchBlob(descriptor: Descriptor, options: AbortOptions = {}): AsyncIterable<Uint8Array> {
    const member = await this.member(blobName(descriptor));
    if (member.size === 0) return;
    const stream = createReadStream(this.file, {
      start: member.offset,
      end: member.offset + member.size - 1,
      highWaterMark: 1 << 20,
      ...(options.signal ? { signal: options.signal } : {}),
    });
    for await (const chunk of stream) yield chunk as Uint8Array;
  }

  async fetchBlobRange(descriptor: Descriptor, start: number, end: number): Promise<Uint8Array> {
    const member = await this.member(blobName(descriptor));
    const stop = Math.min(end, member.size);
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(Math.max(0, stop - start));
      await handle.read(buffer, 0, buffer.length, member.offset + start);
      return buffer;
    } finally {
      await handle.close();
    }
  }

  private async member(name: string): Promise<Member> {
    this.members ??= scanTar(this.file);
    const member = (await this.members).get(name);
    if (!member) throw new SociIndexError('INDEX_NOT_FOUND', `${this.reference} has no ${name}`);
    return member;
  }

  private async readMember(name: string): Promise<Uint8Array> {
    const member = await this.member(name);
    const handle = await open(this.file, 'r');
    try {
      const buffer = Buffer.alloc(member.size);
      await handle.read(buffer, 0, member.size, member.offset);
      return buffer;
    } finally {
      await handle.close();
    }
  }
}

function blobName(descriptor: Descriptor): string {
  return `blobs/${descriptor.digest.replace(':', '/')}`;
}
