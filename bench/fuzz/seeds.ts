/**
 * Seed corpora for the fuzz targets, from real bytes: GNU tar (gnu, posix, ustar, v7 formats;
 * long names, long link targets, xattrs, a sparse file), python3 tarfile (a PAX global header),
 * GNU gzip, pigz and a python3 member with every optional header field, flatc, umoci and skopeo;
 * and the repo's own builders (buildZtoc, buildGzipIndex, buildIndexManifest, encodePrefetch).
 * Written once to `<dir>/<target>/<name>`; a tool that is missing only skips its seeds.
 */

import { spawnSync } from 'node:child_process';
import {
  linkSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { digestOf } from '@soci-ts/oci-referrers';

import { buildGzipIndex, encodeTarZinfo, encodeZinfo } from '../../packages/seekable-gzip/src/index.js';

import { buildIndexManifest, encodePrefetch } from '../../packages/soci-index/src/index.js';
import { buildZtoc, encodeZtoc } from '../../packages/ztoc/src/index.js';

type Seeds = Record<string, Uint8Array>;

function tool(cmd: string, args: string[], input?: Uint8Array, cwd?: string): Buffer | undefined {
  const r = spawnSync(cmd, args, { input, cwd, maxBuffer: 1 << 28 });
  // GNU tar exits 1 or 2 after warnings (a name too long for ustar) with a usable archive.
  if (r.error || (r.status !== 0 && !(cmd === 'tar' && r.stdout.length > 0))) return undefined;
  return r.stdout;
}

async function* once(bytes: Uint8Array): AsyncIterable<Uint8Array> {
  yield bytes;
}

/** A small tree with what tar headers can express: long names and links, links, fifos, xattrs, sparse data. */
function makeTree(root: string): void {
  const long = 'long-directory-name-'.repeat(4);
  mkdirSync(join(root, 'dir', long, 'sub'), { recursive: true });
  writeFileSync(join(root, 'hello.txt'), 'hello\n');
  writeFileSync(join(root, 'empty'), '');
  writeFileSync(join(root, 'dir', 'seven-hundred'), 'x'.repeat(700));
  writeFileSync(join(root, 'dir', long, 'sub', `${'n'.repeat(110)}.txt`), 'deep\n');
  writeFileSync(join(root, 'é-ünïcode.txt'), 'utf-8 name\n');
  symlinkSync(`../${'t'.repeat(120)}/target`, join(root, 'dir', 'long-link'));
  symlinkSync('hello.txt', join(root, 'short-link'));
  linkSync(join(root, 'hello.txt'), join(root, 'dir', 'hard'));
  writeFileSync(join(root, '.wh.deleted'), '');
  tool('mkfifo', [join(root, 'fifo')]);
  tool('setfattr', ['-n', 'user.comment', '-v', 'an xattr', join(root, 'hello.txt')]);
  tool('truncate', ['-s', '1M', join(root, 'sparse')]);
  writeFileSync(join(root, 'nanos'), 'x');
  tool('touch', ['-d', '2020-02-03 04:05:06.123456789', join(root, 'nanos')]);
}

function tarSeeds(tree: string): Seeds {
  const seeds: Seeds = {};
  const common = ['-b', '1', '--sort=name', '-C', tree];
  for (const format of ['gnu', 'oldgnu', 'posix', 'ustar', 'v7']) {
    const tar = tool('tar', [`--format=${format}`, '--exclude=./sparse', ...common, '-cf', '-', '.']);
    if (tar) seeds[`gnu-tar-${format}.tar`] = tar;
  }
  const xattrs = tool('tar', ['--format=posix', '--xattrs', ...common, '-cf', '-', 'hello.txt', 'nanos']);
  if (xattrs) seeds['gnu-tar-posix-xattrs.tar'] = xattrs;
  for (const format of ['gnu', 'posix']) {
    const sparse = tool('tar', [`--format=${format}`, '--sparse', ...common, '-cf', '-', 'sparse']);
    if (sparse) seeds[`gnu-tar-${format}-sparse.tar`] = sparse;
  }
  const pyGlobal = tool('python3', [
    '-c',
    [
      'import io,sys,tarfile',
      'b=io.BytesIO()',
      't=tarfile.open(fileobj=b,mode="w",format=tarfile.PAX_FORMAT,pax_headers={"comment":"global","uname":"g"})',
      'i=tarfile.TarInfo("p/"+"x"*150); d=b"data"; i.size=len(d); i.pax_headers={"mtime":"1.5","SCHILY.xattr.user.a":"b"}',
      't.addfile(i,io.BytesIO(d)); t.close(); sys.stdout.buffer.write(b.getvalue())',
    ].join('\n'),
  ]);
  if (pyGlobal) seeds['python3-tarfile-pax-global.tar'] = pyGlobal;
  return seeds;
}

function gzipSeeds(tar: Uint8Array, tree: string): Seeds {
  const seeds: Seeds = {};
  const small = tar.subarray(0, 4096);
  const add = (name: string, gz: Buffer | undefined) => {
    if (gz) seeds[name] = gz;
  };
  add('gzip-6.gz', tool('gzip', ['-6', '-c'], small));
  add('gzip-1-name.gz', tool('gzip', ['-1', '-c', '-N', join(tree, 'hello.txt')]));
  add('gzip-9-no-name.gz', tool('gzip', ['-9', '-n', '-c'], small));
  add('pigz.gz', tool('pigz', ['-c'], small));
  add('pigz-name.gz', tool('pigz', ['-c', '-N', join(tree, 'hello.txt')]));
  add(
    'python3-all-header-fields.gz',
    tool('python3', [
      '-c',
      [
        'import sys,zlib,struct',
        'd=b"hello, every header field\\n"',
        'extra=b"SC"+struct.pack("<H",5)+b"abcde"',
        'h=b"\\x1f\\x8b\\x08\\x1e"+struct.pack("<I",12345)+b"\\x00\\x03"+struct.pack("<H",len(extra))+extra+b"name.tar\\x00"+b"a comment\\x00"',
        'h+=struct.pack("<H",zlib.crc32(h)&0xffff)',
        'c=zlib.compressobj(6,zlib.DEFLATED,-15)',
        'sys.stdout.buffer.write(h+c.compress(d)+c.flush()+struct.pack("<II",zlib.crc32(d),len(d)))',
      ].join('\n'),
    ]),
  );
  return seeds;
}

/** Zinfo blobs of real gzip streams, prefixed with the sizes the zTOC would give (see the zinfo target). */
async function zinfoSeeds(gzips: Seeds): Promise<Seeds> {
  const seeds: Seeds = {};
  for (const [name, gz] of Object.entries(gzips)) {
    const { index } = await buildGzipIndex(once(gz), { spanSize: 512 });
    const sizes = new Uint8Array(16);
    const view = new DataView(sizes.buffer);
    view.setBigUint64(0, BigInt(index.compressedSize), true);
    view.setBigUint64(8, BigInt(index.uncompressedSize), true);
    const v2 = encodeZinfo(index);
    seeds[`${name}.zinfo`] = Buffer.concat([sizes, v2]);
    // The v1 layout leaves out the first checkpoint (and keeps the count).
    if (index.checkpoints.length > 1) {
      seeds[`${name}.v1.zinfo`] = Buffer.concat([sizes, v2.subarray(0, 12), v2.subarray(12 + 17 + 32768)]);
    }
  }
  return seeds;
}

function tarZinfoSeeds(work: string): Seeds {
  const seeds: Seeds = {
    'ours-4MiB.tarzinfo': encodeTarZinfo({ spanSize: 4 << 20, size: 123_456_789 }),
    'ours-empty.tarzinfo': encodeTarZinfo({ spanSize: 4096, size: 0 }),
  };
  const raw = new Uint8Array(20);
  const view = new DataView(raw.buffer);
  view.setInt32(0, 2, true);
  view.setBigInt64(4, 4194304n, true);
  view.setBigInt64(12, 10485760n, true);
  seeds['raw-20-bytes.tarzinfo'] = raw;
  const schema = join(work, 'tar_zinfo.fbs');
  writeFileSync(
    schema,
    'namespace zinfo;\ntable TarZinfo { version:int; span_size:long; size:long; }\nroot_type TarZinfo;\n',
  );
  for (const [name, json] of Object.entries({
    all: { version: 2, span_size: 65536, size: 1000000 },
    defaults: { span_size: 4096 },
  })) {
    writeFileSync(join(work, `${name}.json`), JSON.stringify(json));
    if (tool('flatc', ['-b', '-o', work, schema, join(work, `${name}.json`)])) {
      seeds[`flatc-${name}.tarzinfo`] = readFileSync(join(work, `${name}.bin`));
    }
  }
  return seeds;
}

async function ztocSeeds(tars: Seeds, work: string): Promise<Seeds> {
  const seeds: Seeds = {};
  for (const name of ['gnu-tar-gnu.tar', 'gnu-tar-posix.tar', 'python3-tarfile-pax-global.tar']) {
    const tar = tars[name];
    if (!tar) continue;
    seeds[`${name}.ztoc`] = encodeZtoc(
      await buildZtoc(once(tar), { compression: 'uncompressed', spanSize: 2048 }),
    );
    const gz = tool('gzip', ['-6', '-c'], tar);
    if (gz)
      seeds[`${name}.gz.ztoc`] = encodeZtoc(
        await buildZtoc(once(gz), { compression: 'gzip', spanSize: 2048 }),
      );
  }
  // One laid out by flatc from JSON (another writer's vtable and field order).
  const fbs = join(import.meta.dirname, '..', '..', 'packages', 'ztoc', 'test', 'fixtures', 'ztoc.fbs');
  const json = {
    version: '0.9',
    build_tool_identifier: 'flatc',
    compressed_archive_size: 3072,
    uncompressed_archive_size: 3072,
    toc: {
      metadata: [
        { name: 'etc/', type: 'dir', uncompressed_offset: 512, mode: 493 },
        {
          name: 'etc/passwd',
          type: 'reg',
          uncompressed_offset: 1024,
          uncompressed_size: 1000,
          uname: 'root',
          mod_time: '2024-01-02T03:04:05Z',
          xattrs: [{ key: 'SCHILY.xattr.user.a', value: 'b' }],
        },
      ],
    },
    compression_info: {
      compression_algorithm: 'Uncompressed',
      max_span_id: 2,
      span_digests: [0, 1, 2].map((i) => digestOf(Buffer.from([i]))),
      checkpoints: [...encodeTarZinfo({ spanSize: 1024, size: 3072 })],
    },
  };
  writeFileSync(join(work, 'z.json'), JSON.stringify(json));
  if (tool('flatc', ['-b', '-o', work, fbs, join(work, 'z.json')]))
    seeds['flatc.ztoc'] = readFileSync(join(work, 'z.bin'));
  return seeds;
}

function sociIndexSeeds(ztocs: Seeds): Seeds {
  const refs = Object.values(ztocs).map((bytes, i) => ({
    digest: digestOf(bytes),
    size: bytes.length,
    layerDigest: digestOf(Buffer.from(`layer ${i}`)),
    layerMediaType: 'application/vnd.oci.image.layer.v1.tar+gzip',
    ...(i % 2 ? { spanSize: 4194304 } : {}),
  }));
  const prefetch = encodePrefetch([{ startSpan: 0, endSpan: 2 }]);
  const subject = {
    mediaType: 'application/vnd.oci.image.manifest.v1+json',
    digest: digestOf(Buffer.from('m')),
    size: 1234,
  };
  const base = { buildToolIdentifier: 'soci-ts v0.1.0', ztocs: refs, prefetches: [] };
  const seeds: Seeds = {
    'v1.json': buildIndexManifest({ ...base, version: 'v1', disableXattrs: true, subject }).bytes,
    'v2-prefetch.json': buildIndexManifest({
      ...base,
      version: 'v2',
      disableXattrs: false,
      prefetches: [{ digest: digestOf(prefetch), size: prefetch.length, layerDigest: refs[0]!.layerDigest }],
      extraAnnotations: { 'org.example': 'kept' },
    }).bytes,
  };
  // Another writer's shape: the artifact type at the top level.
  const v2 = JSON.parse(Buffer.from(seeds['v2-prefetch.json']!).toString());
  seeds['artifact-type.json'] = Buffer.from(
    JSON.stringify({ ...v2, artifactType: 'application/vnd.amazon.soci.index.v2+json' }),
  );
  return seeds;
}

function imageManifestSeeds(work: string, file: string): Seeds {
  const seeds: Seeds = {};
  const layout = join(work, 'layout');
  if (!tool('umoci', ['init', '--layout', layout]) || !tool('umoci', ['new', '--image', `${layout}:t`]))
    return seeds;
  tool('umoci', ['insert', '--image', `${layout}:t`, file, '/hello.txt']);
  tool('umoci', ['insert', '--image', `${layout}:t`, file, '/again.txt']);
  const index = JSON.parse(readFileSync(join(layout, 'index.json'), 'utf8'));
  const blob = (digest: string) => readFileSync(join(layout, 'blobs', 'sha256', digest.slice(7)));
  seeds['umoci-oci.json'] = blob(index.manifests[0].digest);
  const dir = join(work, 'docker');
  if (tool('skopeo', ['copy', '--format', 'v2s2', `oci:${layout}:t`, `dir:${dir}`])) {
    seeds['skopeo-docker-v2s2.json'] = readFileSync(join(dir, 'manifest.json'));
  }
  return seeds;
}

function prefetchSeeds(): Seeds {
  return {
    'ours.json': encodePrefetch([
      { startSpan: 0, endSpan: 3 },
      { startSpan: 7, endSpan: 7, priority: 1 },
    ]),
    'empty.json': encodePrefetch([]),
    'reference-shape.json': Buffer.from(
      '{"version":"1.0","prefetch_spans":[{"start_span":1,"end_span":4,"priority":-2}]}',
    ),
  };
}

/** Header shapes registries send (Docker Hub, GHCR, ECR, distribution, Harbor) and RFC 9110's own. */
function challengeSeeds(): Seeds {
  const lines = {
    'bearer-hub.txt':
      'Bearer realm="https://auth.docker.io/token",service="registry.docker.io",scope="repository:library/busybox:pull"',
    'basic.txt': 'Basic realm="Registry Realm"',
    'two-challenges.txt':
      'Basic realm="x", Bearer realm="https://auth.example/token",service="reg",scope="repository:a:pull"',
    'two-headers.txt':
      'Negotiate\nBearer realm="https://ghcr.io/token",service="ghcr.io",scope="repository:o/r:pull"',
    'escaped.txt':
      'Bearer realm="https://a/t",error="insufficient_scope",error_description="a \\"quoted\\", comma"',
    'token68.txt': 'Negotiate YIIFzAYGKwYBBQUCoIIFwDCC==, Basic realm=simple',
    'rfc9110.txt': 'Newauth realm="apps", type=1, title="Login to \\"apps\\"", Basic realm="simple"',
    'unquoted.txt': 'bearer realm=https://r/token,service=svc,scope=repository:x:pull',
  };
  return Object.fromEntries(Object.entries(lines).map(([k, v]) => [k, Buffer.from(v)]));
}

/** Writes every target's seeds under `dir` and returns how many each got. */
export async function writeSeeds(dir: string): Promise<Record<string, number>> {
  const work = mkdtempSync(join(tmpdir(), 'soci-fuzz-seeds-'));
  try {
    const tree = join(work, 'tree');
    makeTree(tree);
    const tars = tarSeeds(tree);
    const gzips = gzipSeeds(tars['gnu-tar-gnu.tar'] ?? new Uint8Array(1024), tree);
    // pigz ends a block every 32 KiB: a zinfo with a few checkpoints (32 KiB each).
    const text = Buffer.concat(
      ['/usr/share/common-licenses/GPL-3', '/usr/share/common-licenses/Apache-2.0'].map((f) =>
        readFileSync(f),
      ),
    );
    const blocks = tool('pigz', ['-b', '32', '-c'], text.subarray(0, 100_000));
    const zinfoSources = blocks ? { ...gzips, 'pigz-b32-blocks.gz': blocks } : gzips;
    const ztocs = await ztocSeeds(tars, work);
    const corpora: Record<string, Seeds> = {
      tar: tars,
      'gzip-header': gzips,
      zinfo: await zinfoSeeds(zinfoSources),
      'tar-zinfo': tarZinfoSeeds(work),
      ztoc: ztocs,
      'soci-index': sociIndexSeeds(ztocs),
      'image-manifest': imageManifestSeeds(work, join(tree, 'hello.txt')),
      prefetch: prefetchSeeds(),
      'www-authenticate': challengeSeeds(),
    };
    const counts: Record<string, number> = {};
    for (const [target, seeds] of Object.entries(corpora)) {
      mkdirSync(join(dir, target), { recursive: true });
      for (const [name, bytes] of Object.entries(seeds)) writeFileSync(join(dir, target, name), bytes);
      counts[target] = readdirSync(join(dir, target)).length;
    }
    return counts;
  } finally {
    rmSync(work, { recursive: true, force: true });
  }
}
