/**
 * A deliberately different flatbuffers writer, for tests only: it writes front to back
 * (children after parents), gives every table its own vtable placed AFTER the table
 * (negative soffset), stores fields in reverse id order and never shares strings. A reader
 * that only understood the `flatbuffers` Builder's layout would fail on its output.
 */
import type { FileMetadata, Ztoc } from '../src/model.js';

type Field =
  | { id: number; kind: 'i8' | 'i32' | 'u32'; value: number }
  | { id: number; kind: 'i64'; value: number }
  | { id: number; kind: 'ref'; value: Node };
type Node =
  | { kind: 'table'; fields: Field[] }
  | { kind: 'string'; value: string }
  | { kind: 'refs'; items: Node[] }
  | { kind: 'bytes'; value: Uint8Array };

class Out {
  bytes = new Uint8Array(1024);
  view = new DataView(this.bytes.buffer);
  length = 0;
  alloc(n: number, align = 4): number {
    while (this.length % align) this.length++;
    const at = this.length;
    this.length += n;
    if (this.length > this.bytes.length) {
      const bigger = new Uint8Array(Math.max(this.length, this.bytes.length * 2));
      bigger.set(this.bytes);
      this.bytes = bigger;
      this.view = new DataView(bigger.buffer);
    }
    return at;
  }
}

const SIZE = { i8: 1, i32: 4, u32: 4, i64: 8, ref: 4 } as const;

function write(out: Out, node: Node): number {
  switch (node.kind) {
    case 'string': {
      const data = new TextEncoder().encode(node.value);
      const at = out.alloc(4 + data.length + 1);
      out.view.setUint32(at, data.length, true);
      out.bytes.set(data, at + 4);
      return at;
    }
    case 'bytes': {
      const at = out.alloc(4 + node.value.length);
      out.view.setUint32(at, node.value.length, true);
      out.bytes.set(node.value, at + 4);
      return at;
    }
    case 'refs': {
      const at = out.alloc(4 + 4 * node.items.length);
      out.view.setUint32(at, node.items.length, true);
      node.items.forEach((item, i) => {
        const slot = at + 4 + 4 * i;
        const target = write(out, item);
        out.view.setUint32(slot, target - slot, true);
      });
      return at;
    }
    case 'table': {
      const fields = [...node.fields].sort((a, b) => b.id - a.id);
      // soffset, then 8-byte fields at 8-aligned offsets, then the rest.
      let size = 8;
      const place = new Map<Field, number>();
      const ordered = [...fields.filter((f) => f.kind === 'i64'), ...fields.filter((f) => f.kind !== 'i64')];
      for (const f of ordered) {
        place.set(f, size);
        size += SIZE[f.kind];
      }
      const table = out.alloc(size, 8);
      const maxId = Math.max(-1, ...fields.map((f) => f.id));
      const vtable = out.alloc(4 + 2 * (maxId + 1), 2);
      out.view.setInt32(table, table - vtable, true);
      out.view.setUint16(vtable, 4 + 2 * (maxId + 1), true);
      out.view.setUint16(vtable + 2, size, true);
      for (const f of fields) {
        const off = place.get(f)!;
        out.view.setUint16(vtable + 4 + 2 * f.id, off, true);
        const p = table + off;
        if (f.kind === 'i8') out.view.setInt8(p, f.value);
        else if (f.kind === 'i32') out.view.setInt32(p, f.value, true);
        else if (f.kind === 'u32') out.view.setUint32(p, f.value, true);
        else if (f.kind === 'i64') out.view.setBigInt64(p, BigInt(f.value), true);
      }
      for (const f of fields) {
        if (f.kind !== 'ref') continue;
        const p = table + place.get(f)!;
        const target = write(out, f.value); // may grow the buffer: read out.view after
        out.view.setUint32(p, target - p, true);
      }
      return table;
    }
  }
}

const str = (value: string): Node => ({ kind: 'string', value });

function fileNode(f: FileMetadata): Node {
  return {
    kind: 'table',
    fields: [
      {
        id: 13,
        kind: 'ref',
        value: {
          kind: 'refs',
          items: Object.entries(f.xattrs)
            .sort()
            .map(
              ([k, v]) =>
                ({
                  kind: 'table',
                  fields: [
                    { id: 1, kind: 'ref', value: str(v) },
                    { id: 0, kind: 'ref', value: str(k) },
                  ],
                }) as Node,
            ),
        },
      },
      { id: 0, kind: 'ref', value: str(f.name) },
      { id: 1, kind: 'ref', value: str(f.type) },
      { id: 2, kind: 'i64', value: f.uncompressedOffset },
      { id: 3, kind: 'i64', value: f.uncompressedSize },
      { id: 4, kind: 'ref', value: str(f.linkname) },
      { id: 5, kind: 'i64', value: f.mode },
      { id: 6, kind: 'u32', value: f.uid },
      { id: 7, kind: 'u32', value: f.gid },
      { id: 8, kind: 'ref', value: str(f.uname) },
      { id: 9, kind: 'ref', value: str(f.gname) },
      { id: 10, kind: 'ref', value: str(f.modTime) },
      { id: 11, kind: 'i64', value: f.devmajor },
      { id: 12, kind: 'i64', value: f.devminor },
    ],
  };
}

export function forwardEncode(z: Ztoc): Uint8Array {
  const root: Node = {
    kind: 'table',
    fields: [
      {
        id: 5,
        kind: 'ref',
        value: {
          kind: 'table',
          fields: [
            { id: 3, kind: 'ref', value: { kind: 'bytes', value: z.compressionInfo.checkpoints } },
            { id: 0, kind: 'i8', value: z.compressionInfo.algorithm === 'gzip' ? 1 : 2 },
            { id: 1, kind: 'i32', value: z.compressionInfo.maxSpanId },
            { id: 2, kind: 'ref', value: { kind: 'refs', items: z.compressionInfo.spanDigests.map(str) } },
          ],
        },
      },
      {
        id: 4,
        kind: 'ref',
        value: {
          kind: 'table',
          fields: [{ id: 0, kind: 'ref', value: { kind: 'refs', items: z.toc.map(fileNode) } }],
        },
      },
      { id: 3, kind: 'i64', value: z.uncompressedArchiveSize },
      { id: 2, kind: 'i64', value: z.compressedArchiveSize },
      { id: 1, kind: 'ref', value: str(z.buildToolIdentifier) },
      { id: 0, kind: 'ref', value: str(z.version) },
    ],
  };
  const out = new Out();
  const rootSlot = out.alloc(4);
  const rootTable = write(out, root);
  out.view.setUint32(rootSlot, rootTable, true);
  return out.bytes.slice(0, out.length);
}
