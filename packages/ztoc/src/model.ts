/** One tar entry as recorded in a zTOC (see shared/spec/soci-compat.md section 2). */
export type FileType = 'reg' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'block' | 'fifo';

export interface FileMetadata {
  /** Tar path as stored; directories keep their trailing `/`. */
  name: string;
  type: FileType;
  /** Where the file's data starts in the uncompressed tar stream. */
  uncompressedOffset: number;
  /** Size of the file's data. */
  uncompressedSize: number;
  linkname: string;
  /** Permission and mode bits as in the tar header. */
  mode: number;
  uid: number;
  gid: number;
  uname: string;
  gname: string;
  /** RFC 3339 with nanoseconds, e.g. `2006-01-02T15:04:05.999999999Z`. */
  modTime: string;
  devmajor: number;
  devminor: number;
  /** All PAX records of the entry, sorted by key. */
  xattrs: Record<string, string>;
}

export type CompressionAlgorithm = 'gzip' | 'uncompressed';

export interface CompressionInfo {
  algorithm: CompressionAlgorithm;
  maxSpanId: number;
  /** `sha256:<hex>` of each span's compressed bytes. */
  spanDigests: string[];
  /** The zinfo blob (gzip) or TarZinfo flatbuffer (uncompressed). */
  checkpoints: Uint8Array;
}

export interface Ztoc {
  version: string;
  buildToolIdentifier: string;
  compressedArchiveSize: number;
  uncompressedArchiveSize: number;
  toc: FileMetadata[];
  compressionInfo: CompressionInfo;
}
