// What a lazy layer needs to be mounted again without the registry: its zTOC (content-addressed,
// verified against its digest on every read) and a small record per mountpoint naming the image,
// the layer and the zTOC. A daemon restarted while the registry is down restores every lazy layer
// from here and serves the spans it has cached; only unfetched spans need the registry.
import { createHash, randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { type Descriptor, verifyBytes } from '@soci-ts/oci-referrers';

/** How one lazy mount was made, enough to make it again offline. */
export interface RestoreRecord {
  imageRef: string;
  manifestDigest: string;
  layer: Descriptor;
  ztoc: { digest: string; size: number };
  prefetch: { startSpan: number; endSpan: number }[];
}

const DIGEST = /^sha256:[a-f0-9]{64}$/;

export class LocalArtifacts {
  private constructor(private readonly root: string) {}

  static async open(root: string): Promise<LocalArtifacts> {
    await mkdir(join(root, 'blobs'), { recursive: true });
    await mkdir(join(root, 'mounts'), { recursive: true });
    return new LocalArtifacts(root);
  }

  /** Keeps a blob whose bytes match `digest` (anything else is refused). */
  async putBlob(digest: string, bytes: Uint8Array): Promise<void> {
    if (!DIGEST.test(digest)) return;
    verifyBytes(`blob ${digest}`, bytes, digest);
    await writeAtomically(this.blobPath(digest), bytes);
  }

  /** The blob's bytes if kept and still matching their digest; a damaged file is deleted. */
  async blob(digest: string): Promise<Uint8Array | undefined> {
    if (!DIGEST.test(digest)) return undefined;
    const path = this.blobPath(digest);
    const bytes = await readFile(path).catch(() => undefined);
    if (!bytes) return undefined;
    try {
      verifyBytes(`blob ${digest}`, bytes, digest);
      return bytes;
    } catch {
      await rm(path, { force: true });
      return undefined;
    }
  }

  async putRecord(mountpoint: string, record: RestoreRecord): Promise<void> {
    await writeAtomically(this.recordPath(mountpoint), Buffer.from(JSON.stringify(record)));
  }

  async record(mountpoint: string): Promise<RestoreRecord | undefined> {
    try {
      const r = JSON.parse(await readFile(this.recordPath(mountpoint), 'utf8')) as RestoreRecord;
      const ok =
        typeof r.imageRef === 'string' &&
        typeof r.manifestDigest === 'string' &&
        DIGEST.test(r.layer?.digest) &&
        DIGEST.test(r.ztoc?.digest) &&
        Array.isArray(r.prefetch);
      return ok ? r : undefined;
    } catch {
      return undefined;
    }
  }

  /**
   * Marks the layer on `mountpoint` as unpacked whole: a restart then keeps it as it is, even
   * when it holds no file at all (an empty layer looks like a lazy mount that is not mounted).
   */
  async putUnpacked(mountpoint: string): Promise<void> {
    await writeAtomically(this.unpackedPath(mountpoint), new Uint8Array(0));
  }

  async isUnpacked(mountpoint: string): Promise<boolean> {
    return readFile(this.unpackedPath(mountpoint)).then(
      () => true,
      () => false,
    );
  }

  /** Forgets what was kept about the layer on `mountpoint` (its snapshot is gone). */
  async dropRecord(mountpoint: string): Promise<void> {
    await rm(this.recordPath(mountpoint), { force: true });
    await rm(this.unpackedPath(mountpoint), { force: true });
  }

  private blobPath(digest: string): string {
    return join(this.root, 'blobs', digest.replace(':', '-'));
  }

  private recordPath(mountpoint: string): string {
    return join(this.root, 'mounts', `${mountpointKey(mountpoint)}.json`);
  }

  private unpackedPath(mountpoint: string): string {
    return join(this.root, 'mounts', `${mountpointKey(mountpoint)}.unpacked`);
  }
}

function mountpointKey(mountpoint: string): string {
  return createHash('sha256').update(mountpoint).digest('hex');
}

async function writeAtomically(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${randomBytes(6).toString('hex')}`;
  try {
    const fh = await open(tmp, 'wx');
    try {
      await fh.writeFile(bytes);
      await fh.datasync();
    } finally {
      await fh.close();
    }
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}
