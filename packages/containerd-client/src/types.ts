import type { Descriptor } from '@soci-ts/oci-referrers';

// Descriptors are @soci-ts/oci-referrers' (the one owner); containerd stores mediaType, digest, size
// and annotations of one (containerd.types.Descriptor).
export type { Descriptor };

/** A mount a snapshotter hands out (containerd.types.Mount), e.g. overlay lowerdir/upperdir. */
export interface Mount {
  type: string;
  source: string;
  target?: string;
  options: string[];
}

export type Labels = Record<string, string>;

/** A blob in containerd's content store. */
export interface ContentInfo {
  digest: string;
  size: number;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  labels: Labels;
}

export type SnapshotKind = 'UNKNOWN' | 'VIEW' | 'ACTIVE' | 'COMMITTED';

export interface SnapshotInfo {
  name: string;
  parent: string;
  kind: SnapshotKind;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
  labels: Labels;
}

export interface SnapshotUsage {
  size: number;
  inodes: number;
}

/** An image record: a name pointing at a manifest or index in the content store. */
export interface ImageRecord {
  name: string;
  labels: Labels;
  target: Descriptor;
  createdAt: Date | undefined;
  updatedAt: Date | undefined;
}

export interface Lease {
  id: string;
  createdAt: Date | undefined;
  labels: Labels;
}

/** Wire shapes (as @grpc/proto-loader decodes them with the shared loader options). */
export interface WireTimestamp {
  seconds: number;
  nanos: number;
}

export interface WireDescriptor {
  mediaType: string;
  digest: string;
  size: number;
  annotations?: Labels;
}

export function toDate(ts: WireTimestamp | null | undefined): Date | undefined {
  if (!ts) return undefined;
  return new Date(Number(ts.seconds) * 1000 + Math.floor(Number(ts.nanos) / 1e6));
}

export function fromDate(date: Date): WireTimestamp {
  const ms = date.getTime();
  return { seconds: Math.floor(ms / 1000), nanos: (ms % 1000) * 1e6 };
}

export function toDescriptor(d: WireDescriptor | null | undefined): Descriptor {
  const out: Descriptor = {
    mediaType: d?.mediaType ?? '',
    digest: d?.digest ?? '',
    size: Number(d?.size ?? 0),
  };
  if (d?.annotations && Object.keys(d.annotations).length > 0) out.annotations = { ...d.annotations };
  return out;
}

export function fromDescriptor(d: Descriptor): WireDescriptor {
  return { mediaType: d.mediaType, digest: d.digest, size: d.size, annotations: d.annotations ?? {} };
}

export function toMount(m: { type: string; source: string; target?: string; options?: string[] }): Mount {
  const out: Mount = { type: m.type, source: m.source, options: [...(m.options ?? [])] };
  if (m.target) out.target = m.target;
  return out;
}

export function fromMount(m: Mount): { type: string; source: string; target: string; options: string[] } {
  return { type: m.type, source: m.source, target: m.target ?? '', options: m.options };
}
