import { type CallScope, type Connection, unary } from '../transport.js';
import {
  type Descriptor,
  fromDescriptor,
  type ImageRecord,
  type Labels,
  toDate,
  toDescriptor,
  type WireDescriptor,
  type WireTimestamp,
} from '../types.js';

interface WireImage {
  name: string;
  labels?: Labels;
  target?: WireDescriptor;
  createdAt?: WireTimestamp;
  updatedAt?: WireTimestamp;
}

export interface ImageInput {
  name: string;
  target: Descriptor;
  labels?: Labels;
}

/** containerd's image store: names pointing at manifests (what `ctr images ls` shows). */
export class ImagesService {
  constructor(
    private readonly conn: Connection,
    private readonly scope: CallScope,
  ) {}

  async get(name: string): Promise<ImageRecord> {
    const res = await unary<object, { image: WireImage }>(this.conn, this.scope, 'images', 'Get', { name });
    return toImage(res.image);
  }

  async list(filters: string[] = []): Promise<ImageRecord[]> {
    const res = await unary<object, { images: WireImage[] }>(this.conn, this.scope, 'images', 'List', {
      filters,
    });
    return res.images.map(toImage);
  }

  async create(image: ImageInput): Promise<ImageRecord> {
    const res = await unary<object, { image: WireImage }>(this.conn, this.scope, 'images', 'Create', {
      image: toWire(image),
    });
    return toImage(res.image);
  }

  /** Replaces target and labels (or only the given `fields`, e.g. `['target']`, `['labels.x']`). */
  async update(image: ImageInput, fields: string[] = []): Promise<ImageRecord> {
    const res = await unary<object, { image: WireImage }>(this.conn, this.scope, 'images', 'Update', {
      image: toWire(image),
      updateMask: fields.length > 0 ? { paths: fields } : null,
    });
    return toImage(res.image);
  }

  /** Deletes the record; `sync` waits for containerd's garbage collection to finish. */
  async delete(name: string, options: { sync?: boolean } = {}): Promise<void> {
    await unary(this.conn, this.scope, 'images', 'Delete', { name, sync: options.sync ?? false });
  }
}

function toWire(image: ImageInput): WireImage {
  return { name: image.name, labels: image.labels ?? {}, target: fromDescriptor(image.target) };
}

function toImage(image: WireImage): ImageRecord {
  return {
    name: image.name,
    labels: { ...(image.labels ?? {}) },
    target: toDescriptor(image.target),
    createdAt: toDate(image.createdAt),
    updatedAt: toDate(image.updatedAt),
  };
}
