import { readFile } from 'node:fs/promises';
import { isAbsolute, join } from 'node:path';
import { DEFAULT_SPAN_CACHE_BYTES } from '@soci-ts/lazy-fs';
import { parse as parseToml, stringify as stringifyToml, TomlError } from 'smol-toml';
import { configError } from './config-error.js';
import type { DecoderChoice } from './unpack/decoder.js';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface RegistryHostConfig {
  /** Base URLs to use instead of https://<host> (mirrors); only the first is used. Empty: the host itself. */
  endpoints: string[];
  /** Talk plain HTTP to the host (local test registries). */
  plainHttp: boolean;
  /** Accept any TLS certificate. */
  skipVerify: boolean;
  username?: string;
  password?: string;
}

export interface SnapshotterConfig {
  /** Snapshot directories and metadata. */
  root: string;
  /** Unix socket containerd's proxy plugin connects to. */
  socket: string;
  /** containerd's own gRPC socket: asked for its version at first contact (logged, never required). */
  containerdAddress: string;
  logLevel: LogLevel;
  /** host:port for Prometheus /metrics; '' disables it. */
  metricsAddress: string;
  /** Longest wait for a remote mount before the layer is unpacked locally instead. */
  mountTimeoutMs: number;
  /**
   * Longest a read of file data not fetched yet waits for the registry, retries included; then
   * the reader gets EIO (and the next read asks again).
   */
  readTimeoutMs: number;
  registry: { hosts: Record<string, RegistryHostConfig> };
  spanCache: {
    dir: string;
    maxBytes: number;
    /** One budget for the decoded spans all mounted layers keep in memory. */
    memoryBytes: number;
    /** Decoded spans waiting for their disk write; beyond it writes are skipped, background fetch waits. */
    maxPendingWriteBytes: number;
  };
  backgroundFetch: {
    enabled: boolean;
    /** Upper bound on compressed bytes per second fetched in the background; 0 = unlimited. */
    bytesPerSecond: number;
    /** Background fetching waits until foreground reads left the network alone this long. */
    silencePeriodMs: number;
    maxConcurrency: number;
  };
  discovery: { sociV2: boolean; sociV1Referrers: boolean; referrersTagFallback: boolean };
  /** The process that owns the FUSE sessions, so mounts outlive a daemon restart. */
  fuseKeeper: {
    /** Its unix socket. */
    socket: string;
    /** Start one (detached) when none answers on `socket`; a systemd install runs its own unit instead. */
    start: boolean;
    /** For a keeper this daemon starts: how long kernel requests wait for a daemon before EIO. */
    waitForDaemonMs: number;
  };
  /**
   * How layers that are not loaded lazily get here: fetched with concurrent range requests and
   * unpacked by the daemon while they arrive (AWS SOCI's pull_modes.parallel_pull_unpack).
   */
  parallelPullUnpack: {
    /** For images without a SOCI index and layers without a zTOC; false: containerd pulls them. */
    enable: boolean;
    /** For every image, even one with a SOCI index (no lazy loading at all). */
    primary: boolean;
    /** Range requests in flight for all layers together; 0 = no limit. */
    maxConcurrentDownloads: number;
    /** Range requests in flight for one image's layers; 0 = no limit. */
    maxConcurrentDownloadsPerImage: number;
    /** Bytes per range request; 0 = one request per layer. */
    concurrentDownloadChunkSize: number;
    /** Layers unpacking at once, all images together; 0 = no limit. */
    maxConcurrentUnpacks: number;
    /** Layers of one image unpacking at once; 0 = no limit. */
    maxConcurrentUnpacksPerImage: number;
    gzipDecoder: DecoderChoice['gzip'];
    zstdDecoder: DecoderChoice['zstd'];
  };
  prefetch: {
    /** Fetch the spans the SOCI index's prefetch blobs list as soon as a layer is mounted. */
    enabled: boolean;
    /**
     * When set, the paths containers read from lazy layers are appended, in first-read order,
     * to `<record_dir>/<image manifest hex>.paths`: a prefetch list for `soci create --prefetch`.
     */
    recordDir: string;
  };
}

export const DEFAULT_ROOT = '/var/lib/soci-ts';

export function defaultConfig(root = DEFAULT_ROOT): SnapshotterConfig {
  return {
    root,
    socket: '/run/soci-ts/soci-snapshotter.sock',
    containerdAddress: '/run/containerd/containerd.sock',
    logLevel: 'info',
    metricsAddress: '127.0.0.1:9880',
    mountTimeoutMs: 30_000,
    readTimeoutMs: 30_000,
    registry: { hosts: {} },
    spanCache: {
      dir: join(root, 'cache'),
      maxBytes: DEFAULT_SPAN_CACHE_BYTES,
      memoryBytes: 256 * 1024 ** 2,
      maxPendingWriteBytes: 256 * 1024 ** 2,
    },
    backgroundFetch: { enabled: true, bytesPerSecond: 0, silencePeriodMs: 30_000, maxConcurrency: 2 },
    discovery: { sociV2: true, sociV1Referrers: true, referrersTagFallback: true },
    fuseKeeper: { socket: '/run/soci-ts/fuse-keeper.sock', start: true, waitForDaemonMs: 60_000 },
    parallelPullUnpack: {
      enable: true,
      primary: false,
      maxConcurrentDownloads: 16,
      maxConcurrentDownloadsPerImage: 8,
      concurrentDownloadChunkSize: 8 * 1024 ** 2,
      maxConcurrentUnpacks: 4,
      maxConcurrentUnpacksPerImage: 2,
      gzipDecoder: 'auto',
      zstdDecoder: 'auto',
    },
    prefetch: { enabled: true, recordDir: '' },
  };
}

type Table = Record<string, unknown>;
const isTable = (v: unknown): v is Table =>
  typeof v === 'object' && v !== null && !Array.isArray(v) && !(v instanceof Date);

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };

/** "30s", "500ms", "2m", "1h" -> milliseconds. */
export function parseDuration(text: string): number | undefined {
  const m = /^(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(text.trim());
  const unit = m?.[2];
  return m && unit ? Math.round(Number(m[1]) * DURATION_UNITS[unit]!) : undefined;
}

export function formatDuration(ms: number): string {
  if (ms !== 0 && ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms !== 0 && ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}

/** Reads typed values from one TOML table, remembering which keys were used so leftovers are reported. */
class TableReader {
  private readonly used = new Set<string>();
  constructor(
    private readonly table: Table,
    private readonly prefix: string,
  ) {}

  private path(key: string) {
    return this.prefix ? `${this.prefix}.${key}` : key;
  }

  private take(key: string): unknown {
    this.used.add(key);
    return this.table[key];
  }

  string(key: string, fallback: string, check?: (v: string) => string | undefined): string {
    const v = this.take(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'string') throw configError(this.path(key), `must be a string, got ${typeof v}`);
    const problem = check?.(v);
    if (problem) throw configError(this.path(key), problem);
    return v;
  }

  optionalString(key: string): string | undefined {
    const v = this.take(key);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw configError(this.path(key), `must be a string, got ${typeof v}`);
    return v;
  }

  boolean(key: string, fallback: boolean): boolean {
    const v = this.take(key);
    if (v === undefined) return fallback;
    if (typeof v !== 'boolean') throw configError(this.path(key), 'must be true or false');
    return v;
  }

  integer(key: string, fallback: number, min: number): number {
    const v = this.take(key);
    if (v === undefined) return fallback;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isSafeInteger(n) || n < min) {
      throw configError(this.path(key), `must be an integer >= ${min}`);
    }
    return n;
  }

  duration(key: string, fallbackMs: number, range: { minMs?: number; maxMs?: number } = {}): number {
    const v = this.take(key);
    if (v === undefined) return fallbackMs;
    const ms = typeof v === 'string' ? parseDuration(v) : undefined;
    if (ms === undefined) {
      throw configError(this.path(key), 'must be a duration string such as "500ms", "30s", "2m" or "1h"');
    }
    if (ms < (range.minMs ?? 0) || ms > (range.maxMs ?? Number.MAX_SAFE_INTEGER)) {
      throw configError(
        this.path(key),
        `must be between ${formatDuration(range.minMs ?? 0)} and ${formatDuration(range.maxMs ?? Number.MAX_SAFE_INTEGER)}`,
      );
    }
    return ms;
  }

  stringList(key: string, fallback: string[]): string[] {
    const v = this.take(key);
    if (v === undefined) return fallback;
    if (!Array.isArray(v) || v.some((x) => typeof x !== 'string')) {
      throw configError(this.path(key), 'must be an array of strings');
    }
    return v as string[];
  }

  table_(key: string): TableReader {
    const v = this.take(key);
    if (v === undefined) return new TableReader({}, this.path(key));
    if (!isTable(v)) throw configError(this.path(key), 'must be a table');
    return new TableReader(v, this.path(key));
  }

  entries(): [string, TableReader][] {
    return Object.entries(this.table).map(([k, v]) => {
      this.used.add(k);
      if (!isTable(v)) throw configError(this.path(JSON.stringify(k)), 'must be a table');
      return [k, new TableReader(v, this.path(JSON.stringify(k)))];
    });
  }

  /** Fails on the first key no reader asked for (most likely a typo). */
  done(): void {
    for (const key of Object.keys(this.table)) {
      if (!this.used.has(key)) throw configError(this.path(key), 'unknown key');
    }
  }
}

const absolutePath = (v: string) => (isAbsolute(v) ? undefined : 'must be an absolute path');
const hostPortOrEmpty = (v: string) =>
  v === '' || /^(\[[0-9a-fA-F:.]+\]|[^:\s]+):\d{1,5}$/.test(v)
    ? undefined
    : 'must be host:port (or "" to disable)';
const oneOf = (values: readonly string[]) => (v: string) =>
  values.includes(v) ? undefined : `must be one of ${values.map((x) => `"${x}"`).join(', ')}`;
const url = (v: string) => (/^https?:\/\/[^\s/]+/.test(v) ? undefined : 'must be an http:// or https:// URL');

/** Validates a parsed TOML document into a full config (defaults for what is missing). */
export function configFromToml(doc: Table): SnapshotterConfig {
  const top = new TableReader(doc, '');
  const root = top.string('root', DEFAULT_ROOT, absolutePath);
  const d = defaultConfig(root);
  const logLevel = top.string('log_level', d.logLevel, (v) =>
    (LOG_LEVELS as readonly string[]).includes(v) ? undefined : `must be one of ${LOG_LEVELS.join(', ')}`,
  ) as LogLevel;
  const config: SnapshotterConfig = {
    root,
    socket: top.string('socket', d.socket, absolutePath),
    containerdAddress: top.string('containerd_address', d.containerdAddress, absolutePath),
    logLevel,
    metricsAddress: top.string('metrics_address', d.metricsAddress, hostPortOrEmpty),
    mountTimeoutMs: top.duration('mount_timeout', d.mountTimeoutMs),
    readTimeoutMs: top.duration('read_timeout', d.readTimeoutMs, { minMs: 1, maxMs: 2 ** 31 - 1 }),
    registry: { hosts: {} },
    spanCache: d.spanCache,
    backgroundFetch: d.backgroundFetch,
    discovery: d.discovery,
    fuseKeeper: d.fuseKeeper,
    parallelPullUnpack: d.parallelPullUnpack,
    prefetch: d.prefetch,
  };

  const registry = top.table_('registry');
  const hosts = registry.table_('hosts');
  for (const [host, h] of hosts.entries()) {
    config.registry.hosts[host] = {
      endpoints: h.stringList('endpoints', []),
      plainHttp: h.boolean('plain_http', false),
      skipVerify: h.boolean('skip_verify', false),
      username: h.optionalString('username'),
      password: h.optionalString('password'),
    };
    for (const [i, e] of config.registry.hosts[host].endpoints.entries()) {
      const problem = url(e);
      if (problem) throw configError(`registry.hosts.${JSON.stringify(host)}.endpoints[${i}]`, problem);
    }
    h.done();
  }
  hosts.done();
  registry.done();

  const cache = top.table_('span_cache');
  config.spanCache = {
    dir: cache.string('dir', d.spanCache.dir, absolutePath),
    maxBytes: cache.integer('max_bytes', d.spanCache.maxBytes, 0),
    memoryBytes: cache.integer('memory_bytes', d.spanCache.memoryBytes, 0),
    maxPendingWriteBytes: cache.integer('max_pending_write_bytes', d.spanCache.maxPendingWriteBytes, 0),
  };
  cache.done();

  const bg = top.table_('background_fetch');
  config.backgroundFetch = {
    enabled: bg.boolean('enabled', d.backgroundFetch.enabled),
    bytesPerSecond: bg.integer('bytes_per_second', d.backgroundFetch.bytesPerSecond, 0),
    silencePeriodMs: bg.duration('silence_period', d.backgroundFetch.silencePeriodMs),
    maxConcurrency: bg.integer('max_concurrency', d.backgroundFetch.maxConcurrency, 1),
  };
  bg.done();

  const disc = top.table_('discovery');
  config.discovery = {
    sociV2: disc.boolean('soci_v2', d.discovery.sociV2),
    sociV1Referrers: disc.boolean('soci_v1_referrers', d.discovery.sociV1Referrers),
    referrersTagFallback: disc.boolean('referrers_tag_fallback', d.discovery.referrersTagFallback),
  };
  disc.done();

  const keeper = top.table_('fuse_keeper');
  config.fuseKeeper = {
    socket: keeper.string('socket', d.fuseKeeper.socket, absolutePath),
    start: keeper.boolean('start', d.fuseKeeper.start),
    waitForDaemonMs: keeper.duration('wait_for_daemon', d.fuseKeeper.waitForDaemonMs, {
      minMs: 1,
      maxMs: 2 ** 31 - 1,
    }),
  };
  keeper.done();

  const ppu = top.table_('parallel_pull_unpack');
  const p = d.parallelPullUnpack;
  config.parallelPullUnpack = {
    enable: ppu.boolean('enable', p.enable),
    primary: ppu.boolean('primary', p.primary),
    maxConcurrentDownloads: ppu.integer('max_concurrent_downloads', p.maxConcurrentDownloads, 0),
    maxConcurrentDownloadsPerImage: ppu.integer(
      'max_concurrent_downloads_per_image',
      p.maxConcurrentDownloadsPerImage,
      0,
    ),
    concurrentDownloadChunkSize: ppu.integer(
      'concurrent_download_chunk_size',
      p.concurrentDownloadChunkSize,
      0,
    ),
    maxConcurrentUnpacks: ppu.integer('max_concurrent_unpacks', p.maxConcurrentUnpacks, 0),
    maxConcurrentUnpacksPerImage: ppu.integer(
      'max_concurrent_unpacks_per_image',
      p.maxConcurrentUnpacksPerImage,
      0,
    ),
    gzipDecoder: ppu.string(
      'gzip_decoder',
      p.gzipDecoder,
      oneOf(['auto', 'igzip', 'zlib']),
    ) as DecoderChoice['gzip'],
    zstdDecoder: ppu.string(
      'zstd_decoder',
      p.zstdDecoder,
      oneOf(['auto', 'zstd', 'fzstd']),
    ) as DecoderChoice['zstd'],
  };
  ppu.done();

  const prefetch = top.table_('prefetch');
  config.prefetch = {
    enabled: prefetch.boolean('enabled', d.prefetch.enabled),
    recordDir: prefetch.string('record_dir', d.prefetch.recordDir, (v) =>
      v === '' ? undefined : absolutePath(v),
    ),
  };
  prefetch.done();
  top.done();
  return config;
}

export function parseConfig(text: string): SnapshotterConfig {
  let doc: Table;
  try {
    doc = parseToml(text) as Table;
  } catch (err) {
    if (err instanceof TomlError) {
      throw configError(
        '',
        `TOML syntax error at line ${err.line}, column ${err.column}: ${err.message.split('\n')[0]}`,
        { cause: err },
      );
    }
    throw err;
  }
  return configFromToml(doc);
}

export async function loadConfigFile(path: string): Promise<SnapshotterConfig> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    throw configError('', `cannot read ${path}: ${(err as Error).message}`, { cause: err });
  }
  return parseConfig(text);
}

/** Registry passwords replaced by a marker: what `--print-config` shows (logs and tickets get pasted). */
export function redactConfig(c: SnapshotterConfig): SnapshotterConfig {
  const hosts = Object.fromEntries(
    Object.entries(c.registry.hosts).map(([host, h]) => [
      host,
      h.password === undefined ? h : { ...h, password: '<redacted>' },
    ]),
  );
  return { ...c, registry: { ...c.registry, hosts } };
}

/** The config as TOML, in the file's own key names; parseConfig(formatConfig(c)) gives c back. */
export function formatConfig(c: SnapshotterConfig): string {
  const hosts: Table = {};
  for (const [host, h] of Object.entries(c.registry.hosts)) {
    hosts[host] = {
      endpoints: h.endpoints,
      plain_http: h.plainHttp,
      skip_verify: h.skipVerify,
      ...(h.username !== undefined ? { username: h.username } : {}),
      ...(h.password !== undefined ? { password: h.password } : {}),
    };
  }
  return `${stringifyToml({
    root: c.root,
    socket: c.socket,
    containerd_address: c.containerdAddress,
    log_level: c.logLevel,
    metrics_address: c.metricsAddress,
    mount_timeout: formatDuration(c.mountTimeoutMs),
    read_timeout: formatDuration(c.readTimeoutMs),
    registry: { hosts },
    span_cache: {
      dir: c.spanCache.dir,
      max_bytes: c.spanCache.maxBytes,
      memory_bytes: c.spanCache.memoryBytes,
      max_pending_write_bytes: c.spanCache.maxPendingWriteBytes,
    },
    background_fetch: {
      enabled: c.backgroundFetch.enabled,
      bytes_per_second: c.backgroundFetch.bytesPerSecond,
      silence_period: formatDuration(c.backgroundFetch.silencePeriodMs),
      max_concurrency: c.backgroundFetch.maxConcurrency,
    },
    discovery: {
      soci_v2: c.discovery.sociV2,
      soci_v1_referrers: c.discovery.sociV1Referrers,
      referrers_tag_fallback: c.discovery.referrersTagFallback,
    },
    fuse_keeper: {
      socket: c.fuseKeeper.socket,
      start: c.fuseKeeper.start,
      wait_for_daemon: formatDuration(c.fuseKeeper.waitForDaemonMs),
    },
    parallel_pull_unpack: {
      enable: c.parallelPullUnpack.enable,
      primary: c.parallelPullUnpack.primary,
      max_concurrent_downloads: c.parallelPullUnpack.maxConcurrentDownloads,
      max_concurrent_downloads_per_image: c.parallelPullUnpack.maxConcurrentDownloadsPerImage,
      concurrent_download_chunk_size: c.parallelPullUnpack.concurrentDownloadChunkSize,
      max_concurrent_unpacks: c.parallelPullUnpack.maxConcurrentUnpacks,
      max_concurrent_unpacks_per_image: c.parallelPullUnpack.maxConcurrentUnpacksPerImage,
      gzip_decoder: c.parallelPullUnpack.gzipDecoder,
      zstd_decoder: c.parallelPullUnpack.zstdDecoder,
    },
    prefetch: { enabled: c.prefetch.enabled, record_dir: c.prefetch.recordDir },
  })}\n`;
}
