import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  defaultConfig,
  formatConfig,
  formatDuration,
  parseConfig,
  parseDuration,
  type SnapshotterConfig,
} from '../src/config.js';
import { ConfigError } from '../src/config-error.js';
import { spawnTs, withTempDir } from './helpers.js';

const errorOf = (toml: string): ConfigError => {
  try {
    parseConfig(toml);
  } catch (err) {
    if (err instanceof ConfigError) return err;
    throw err;
  }
  throw new Error(`config was accepted: ${toml}`);
};

describe('config', () => {
  it('documents its defaults: an empty file gives them', () => {
    const c = parseConfig('');
    expect(c).toEqual(defaultConfig());
    expect(c.root).toBe('/var/lib/soci-ts');
    expect(c.socket).toBe('/run/soci-ts/soci-snapshotter.sock');
    expect(c.metricsAddress).toBe('127.0.0.1:9880');
    expect(c.mountTimeoutMs).toBe(30_000);
    expect(c.readTimeoutMs).toBe(30_000);
    // A deadline of 0 (or beyond what a timer holds) would fail every read at once.
    expect(() => parseConfig('read_timeout = "0s"\n')).toThrow(/read_timeout: must be between 1ms and/);
    expect(() => parseConfig('read_timeout = "600h"\n')).toThrow(/read_timeout: must be between/);
    expect(c.spanCache.dir).toBe('/var/lib/soci-ts/cache');
    expect(c.fuseKeeper).toEqual({
      socket: '/run/soci-ts/fuse-keeper.sock',
      start: true,
      waitForDaemonMs: 60_000,
    });
    expect(() => parseConfig('[fuse_keeper]\nsocket = "keeper.sock"\n')).toThrow(
      /fuse_keeper.socket: must be an absolute path/,
    );
  });

  it('reads every section', () => {
    const c = parseConfig(`
root = "/srv/soci"
socket = "/tmp/s.sock"
log_level = "debug"
metrics_address = ""
mount_timeout = "1.5s"
[registry.hosts."127.0.0.1:5000"]
endpoints = ["http://127.0.0.1:5001"]
plain_http = true
username = "u"
password = "p"
[span_cache]
max_bytes = 1024
[background_fetch]
enabled = false
bytes_per_second = 1000000
[discovery]
soci_v1_referrers = false
[prefetch]
enabled = false
record_dir = "/srv/recorded"
[fuse_keeper]
socket = "/srv/keeper.sock"
start = false
wait_for_daemon = "2m"
`);
    expect(c.fuseKeeper).toEqual({ socket: '/srv/keeper.sock', start: false, waitForDaemonMs: 120_000 });
    expect(c.root).toBe('/srv/soci');
    expect(c.spanCache).toEqual({
      dir: '/srv/soci/cache',
      maxBytes: 1024,
      memoryBytes: 256 * 1024 ** 2,
      maxPendingWriteBytes: 256 * 1024 ** 2,
    });
    expect(c.metricsAddress).toBe('');
    expect(c.mountTimeoutMs).toBe(1500);
    expect(c.registry.hosts['127.0.0.1:5000']).toEqual({
      endpoints: ['http://127.0.0.1:5001'],
      plainHttp: true,
      skipVerify: false,
      username: 'u',
      password: 'p',
    });
    expect(c.backgroundFetch).toMatchObject({ enabled: false, bytesPerSecond: 1_000_000 });
    expect(c.discovery).toEqual({ sociV2: true, sociV1Referrers: false, referrersTagFallback: true });
    expect(c.prefetch).toEqual({ enabled: false, recordDir: '/srv/recorded' });
  });

  it.each([
    ['roots = "/x"', 'roots'],
    ['root = "relative"', 'root'],
    ['log_level = "loud"', 'log_level'],
    ['metrics_address = "localhost"', 'metrics_address'],
    ['mount_timeout = 30', 'mount_timeout'],
    ['mount_timeout = "30 seconds"', 'mount_timeout'],
    ['[span_cache]\nmax_bytes = -1', 'span_cache.max_bytes'],
    ['[span_cache]\nmax_size = 1', 'span_cache.max_size'],
    ['[background_fetch]\nenabled = "yes"', 'background_fetch.enabled'],
    ['[background_fetch]\nmax_concurrency = 0', 'background_fetch.max_concurrency'],
    ['[discovery]\nsoci_v3 = true', 'discovery.soci_v3'],
    ['[prefetch]\nrecord_dir = "recorded"', 'prefetch.record_dir'],
    ['[prefetch]\nenabled = 1', 'prefetch.enabled'],
    ['[parallel_pull_unpack]\ngzip_decoder = "pigz"', 'parallel_pull_unpack.gzip_decoder'],
    ['[parallel_pull_unpack]\nmax_concurrent_unpacks = -1', 'parallel_pull_unpack.max_concurrent_unpacks'],
    ['[parallel_pull_unpack]\nenabled = true', 'parallel_pull_unpack.enabled'],
    ['[registry.hosts."r.io"]\nendpoints = ["ftp://x"]', 'registry.hosts."r.io".endpoints[0]'],
    ['[registry.hosts."r.io"]\ninsecure = true', 'registry.hosts."r.io".insecure'],
    ['registry = 1', 'registry'],
  ])('rejects %j naming the key %s', (toml, key) => {
    const err = errorOf(toml);
    expect(err.code).toBe('SNAPSHOTTER_CONFIG_INVALID');
    expect(err.key).toBe(key);
    expect(err.message).toContain(key);
    expect(err.message).not.toContain('\n');
  });

  it('reports TOML syntax errors with their line', () => {
    expect(errorOf('root = \n"x"').message).toMatch(/line 1/);
  });

  it('parses what it prints (any valid config)', () => {
    const duration = fc.integer({ min: 0, max: 10_000_000 });
    const word = fc.stringMatching(/^[a-z0-9][a-z0-9.-]{0,20}$/);
    const arb = fc.record({
      root: word.map((w) => `/r/${w}`),
      socket: word.map((w) => `/s/${w}.sock`),
      containerdAddress: word.map((w) => `/c/${w}/containerd.sock`),
      logLevel: fc.constantFrom('trace', 'debug', 'info', 'warn', 'error', 'fatal' as const),
      metricsAddress: fc.oneof(
        fc.constant(''),
        fc.integer({ min: 0, max: 65535 }).map((p) => `127.0.0.1:${p}`),
      ),
      mountTimeoutMs: duration,
      readTimeoutMs: fc.integer({ min: 1, max: 10_000_000 }),
      registry: fc.record({
        hosts: fc.dictionary(
          word,
          fc.record({
            endpoints: fc.array(
              word.map((w) => `https://${w}`),
              { maxLength: 3 },
            ),
            plainHttp: fc.boolean(),
            skipVerify: fc.boolean(),
            username: fc.option(word, { nil: undefined }),
            password: fc.option(fc.string(), { nil: undefined }),
          }),
        ),
      }),
      spanCache: fc.record({
        dir: word.map((w) => `/c/${w}`),
        maxBytes: fc.maxSafeNat(),
        memoryBytes: fc.maxSafeNat(),
        maxPendingWriteBytes: fc.maxSafeNat(),
      }),
      backgroundFetch: fc.record({
        enabled: fc.boolean(),
        bytesPerSecond: fc.maxSafeNat(),
        silencePeriodMs: duration,
        maxConcurrency: fc.integer({ min: 1, max: 64 }),
      }),
      discovery: fc.record({
        sociV2: fc.boolean(),
        sociV1Referrers: fc.boolean(),
        referrersTagFallback: fc.boolean(),
      }),
      fuseKeeper: fc.record({
        socket: word.map((w) => `/k/${w}.sock`),
        start: fc.boolean(),
        waitForDaemonMs: duration.filter((ms) => ms >= 1),
      }),
      parallelPullUnpack: fc.record({
        enable: fc.boolean(),
        primary: fc.boolean(),
        maxConcurrentDownloads: fc.nat(),
        maxConcurrentDownloadsPerImage: fc.nat(),
        concurrentDownloadChunkSize: fc.nat(),
        maxConcurrentUnpacks: fc.nat(),
        maxConcurrentUnpacksPerImage: fc.nat(),
        gzipDecoder: fc.constantFrom('auto', 'igzip', 'zlib'),
        zstdDecoder: fc.constantFrom('auto', 'zstd', 'fzstd'),
      }),
      prefetch: fc.record({
        enabled: fc.boolean(),
        recordDir: fc.oneof(
          fc.constant(''),
          word.map((w) => `/p/${w}`),
        ),
      }),
    }) as fc.Arbitrary<SnapshotterConfig>;
    fc.assert(
      fc.property(arb, (c) => {
        expect(parseConfig(formatConfig(c))).toEqual(c);
      }),
    );
  });

  it('formats and parses durations', () => {
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('2h')).toBe(7_200_000);
    expect(parseDuration('1s5')).toBeUndefined();
    fc.assert(
      fc.property(fc.nat(), (ms) => {
        expect(parseDuration(formatDuration(ms))).toBe(ms);
      }),
    );
  });
});

describe('soci-snapshotter command line', () => {
  it('prints the effective config and exits 0', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'c.toml');
      await writeFile(
        file,
        `root = "${dir}/root"\nmount_timeout = "5s"\n[registry.hosts."r.io"]\nusername = "me"\npassword = "s3cret-pw"\n`,
      );
      const r = await spawnTs('src/bin.ts', ['--config', file, '--print-config']).done;
      expect(r.code).toBe(0);
      const printed = parseConfig(r.stdout);
      expect(printed.root).toBe(`${dir}/root`);
      expect(printed.mountTimeoutMs).toBe(5000);
      expect(printed.spanCache.dir).toBe(`${dir}/root/cache`);
      // Passwords never reach the terminal (configs get pasted into tickets).
      expect(r.stdout).not.toContain('s3cret-pw');
      expect(printed.registry.hosts['r.io']).toMatchObject({ username: 'me', password: '<redacted>' });
    });
  });

  it('exits 2 with one line naming the bad key', async () => {
    await withTempDir(async (dir) => {
      const file = join(dir, 'c.toml');
      await writeFile(file, '[background_fetch]\nbytes_per_second = "fast"\n');
      const r = await spawnTs('src/bin.ts', ['--config', file]).done;
      expect(r.code).toBe(2);
      expect(r.stdout).toBe('');
      const lines = r.stderr.trim().split('\n');
      expect(lines).toHaveLength(1);
      expect(lines[0]).toContain('background_fetch.bytes_per_second');
    });
  });
});
