// Hostile and odd tars (written by python3's tarfile, which stores names as given) against the
// local unpacker: nothing may land outside dest, and a rejected layer leaves dest empty.
import { createHash } from 'node:crypto';
import { lstat, mkdir, mkdtemp, readdir, readFile, readlink, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { UnpackError, type UnpackErrorCode } from '../src/unpack/errors.js';
import { type UnpackResult, unpackLayer } from '../src/unpack/unpack-layer.js';

interface TarEntry {
  name: string;
  type: 'file' | 'dir' | 'symlink' | 'hardlink' | 'char' | 'fifo';
  data?: string;
  linkname?: string;
  mode?: number;
  pax?: Record<string, string>;
}

const WRITE_TAR = `
import io, json, sys, tarfile
TYPES = {'file': tarfile.REGTYPE, 'dir': tarfile.DIRTYPE, 'symlink': tarfile.SYMTYPE,
         'hardlink': tarfile.LNKTYPE, 'char': tarfile.CHRTYPE, 'fifo': tarfile.FIFOTYPE}
with tarfile.open(sys.argv[1], 'w', format=tarfile.PAX_FORMAT) as tar:
    for e in json.load(sys.stdin):
        info = tarfile.TarInfo(e['name'])
        info.type = TYPES[e['type']]
        info.mode = e.get('mode', 0o755 if e['type'] == 'dir' else 0o644)
        info.mtime = 1600000000
        info.linkname = e.get('linkname', '')
        info.pax_headers = e.get('pax', {})
        data = e.get('data', '').encode()
        info.size = len(data) if e['type'] == 'file' else 0
        tar.addfile(info, io.BytesIO(data) if e['type'] == 'file' else None)
`;

let scratch: string;
let counter = 0;

beforeAll(async () => {
  scratch = await mkdtemp(join(tmpdir(), 'soci-unpack-hostile-'));
});
afterAll(async () => {
  await rm(scratch, { recursive: true, force: true });
});

/** box/dest (the layer's directory) beside box/outside (must stay untouched). */
async function makeBox(): Promise<{ box: string; dest: string; outside: string }> {
  const box = join(scratch, `box-${counter++}`);
  const dest = join(box, 'dest');
  const outside = join(box, 'outside');
  await mkdir(dest, { recursive: true });
  await mkdir(outside);
  return { box, dest, outside };
}

async function writeTar(entries: TarEntry[]): Promise<Uint8Array> {
  const file = join(scratch, `t-${counter++}.tar`);
  await run('python3', ['-c', WRITE_TAR, file], { input: JSON.stringify(entries) });
  return readFile(file);
}

async function unpackTar(tar: Uint8Array, dest: string): Promise<UnpackResult> {
  return unpackLayer({
    blob: (async function* () {
      yield tar;
    })(),
    digest: `sha256:${createHash('sha256').update(tar).digest('hex')}`,
    mediaType: 'application/vnd.oci.image.layer.v1.tar',
    dest,
  });
}

/** Unpacks `entries` expecting `code`; checks dest is empty again and nothing changed outside it. */
async function expectRejected(entries: TarEntry[], code: UnpackErrorCode, naming?: string): Promise<void> {
  const { box, dest, outside } = await makeBox();
  await writeFile(join(outside, 'secret'), 'secret\n');
  const err = await unpackTar(await writeTar(entries), dest).then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(UnpackError);
  expect((err as UnpackError).code, (err as Error).message).toBe(code);
  if (naming) expect((err as Error).message).toContain(JSON.stringify(naming));
  expect(await readdir(dest)).toEqual([]);
  expect((await readdir(box)).sort()).toEqual(['dest', 'outside']);
  expect(await readdir(outside)).toEqual(['secret']);
  const secret = await lstat(join(outside, 'secret'));
  expect(secret.nlink).toBe(1);
  expect(await readFile(join(outside, 'secret'), 'utf8')).toBe('secret\n');
  const { stdout } = await run('getfattr', ['-d', '-m', '-', '--absolute-names', outside]);
  expect(stdout).toBe('');
}

describe('hostile tars', () => {
  const before: TarEntry[] = [
    { name: 'ok/', type: 'dir' },
    { name: 'ok/file', type: 'file', data: 'fine' },
  ];

  it('rejects ".." components, also in PAX path records and deep inside names', async () => {
    await expectRejected(
      [...before, { name: '../evil', type: 'file', data: 'x' }],
      'SNAPSHOTTER_UNSAFE_PATH',
      '../evil',
    );
    await expectRejected(
      [...before, { name: '../outside/évil-ü', type: 'file' }],
      'SNAPSHOTTER_UNSAFE_PATH',
      '../outside/évil-ü',
    );
    await expectRejected(
      [...before, { name: 'ok/a/../../../x', type: 'file' }],
      'SNAPSHOTTER_UNSAFE_PATH',
      'ok/a/../../../x',
    );
    await expectRejected(
      [{ name: `${'d/'.repeat(60)}../../${'../'.repeat(70)}x`, type: 'dir' }],
      'SNAPSHOTTER_UNSAFE_PATH',
    );
  });

  it('never writes through a symlink made by an earlier entry', async () => {
    const { outside } = await makeBox(); // only for its path's shape: the real one is per call
    void outside;
    for (const [link, target] of [
      ['link', '/tmp/outside-target'],
      ['link', '../outside'],
      ['ok/deep', '../../outside'],
    ] as const) {
      await expectRejected(
        [
          ...before,
          { name: link, type: 'symlink', linkname: target },
          { name: `${link}/file`, type: 'file', data: 'x' },
        ],
        'SNAPSHOTTER_UNSAFE_PATH',
        `${link}/file`,
      );
      await expectRejected(
        [...before, { name: link, type: 'symlink', linkname: target }, { name: `${link}/sub/`, type: 'dir' }],
        'SNAPSHOTTER_UNSAFE_PATH',
      );
      await expectRejected(
        [
          ...before,
          { name: link, type: 'symlink', linkname: target },
          { name: `${link}/.wh..wh..opq`, type: 'file' },
        ],
        'SNAPSHOTTER_UNSAFE_PATH',
      );
      await expectRejected(
        [
          ...before,
          { name: link, type: 'symlink', linkname: target },
          { name: `${link}/.wh.secret`, type: 'file' },
        ],
        'SNAPSHOTTER_UNSAFE_PATH',
      );
    }
  });

  it('never writes through a symlink that replaced the directory the entries before went into', async () => {
    // The writer remembers the directory of the last entry: the entries after a symlink replaced
    // that directory must be checked against the symlink, not the remembered directory.
    for (const target of ['../outside', '/tmp/outside-target']) {
      await expectRejected(
        [
          ...before,
          { name: 'ok/other', type: 'file', data: 'same directory as the entry before' },
          { name: 'ok', type: 'symlink', linkname: target },
          { name: 'ok/file2', type: 'file', data: 'x' },
        ],
        'SNAPSHOTTER_UNSAFE_PATH',
        'ok/file2',
      );
      await expectRejected(
        [
          ...before,
          { name: 'ok', type: 'symlink', linkname: target },
          { name: 'ok/.wh.secret', type: 'file' },
        ],
        'SNAPSHOTTER_UNSAFE_PATH',
      );
    }
  });

  it('keeps hardlinks inside dest', async () => {
    await expectRejected(
      [...before, { name: 'passwd', type: 'hardlink', linkname: '../../etc/passwd' }],
      'SNAPSHOTTER_UNSAFE_PATH',
    );
    await expectRejected(
      [
        ...before,
        { name: 'up', type: 'symlink', linkname: '../outside' },
        { name: 'h', type: 'hardlink', linkname: 'up/secret' },
      ],
      'SNAPSHOTTER_UNSAFE_PATH',
    );
    await expectRejected(
      [...before, { name: 'h', type: 'hardlink', linkname: 'ok' }],
      'SNAPSHOTTER_UNSAFE_PATH',
    );
    await expectRejected(
      [...before, { name: 'h', type: 'hardlink', linkname: 'missing' }],
      'SNAPSHOTTER_BAD_LAYER',
    );
  });

  it('rejects whiteouts that name no file', async () => {
    for (const name of ['.wh.', 'ok/.wh..', 'ok/.wh...']) {
      await expectRejected([...before, { name, type: 'file' }], 'SNAPSHOTTER_UNSAFE_PATH', name);
    }
  });

  it('puts absolute names inside dest', async () => {
    const { dest, outside } = await makeBox();
    await unpackTar(
      await writeTar([
        { name: '/abs/path', type: 'file', data: 'in' },
        { name: '/', type: 'dir' },
      ]),
      dest,
    );
    expect(await readFile(join(dest, 'abs/path'), 'utf8')).toBe('in');
    expect(await readdir(outside)).toEqual([]);
  });

  it('replaces a symlink by a later file or directory instead of following it', async () => {
    const { dest, outside } = await makeBox();
    const result = await unpackTar(
      await writeTar([
        { name: 'f', type: 'symlink', linkname: join(outside, 'f') },
        { name: 'f', type: 'file', data: 'mine' },
        { name: 'd', type: 'symlink', linkname: outside },
        { name: 'd/', type: 'dir' },
        { name: 'd/x', type: 'file', data: 'x' },
        { name: 'h', type: 'symlink', linkname: '/etc/passwd' },
        { name: 'h2', type: 'hardlink', linkname: 'h' },
      ]),
      dest,
    );
    expect(result.entries).toBe(7);
    expect(await readdir(outside)).toEqual([]);
    expect((await lstat(join(dest, 'f'))).isFile()).toBe(true);
    expect(await readFile(join(dest, 'f'), 'utf8')).toBe('mine');
    expect((await lstat(join(dest, 'd'))).isDirectory()).toBe(true);
    // A hardlink to a symlink is another name of the symlink, never of /etc/passwd.
    expect(await readlink(join(dest, 'h2'))).toBe('/etc/passwd');
  });

  it('drops overlayfs xattrs carried by the layer itself, with a warning', async () => {
    const { dest } = await makeBox();
    const result = await unpackTar(
      await writeTar([
        {
          name: 'd/',
          type: 'dir',
          pax: { 'SCHILY.xattr.trusted.overlay.opaque': 'y', 'SCHILY.xattr.user.kept': 'v' },
        },
      ]),
      dest,
    );
    expect(result.warnings.join('\n')).toContain('trusted.overlay.opaque');
    const { stdout } = await run('getfattr', ['-d', '-m', '-', '--absolute-names', join(dest, 'd')]);
    expect(stdout).toContain('user.kept="v"');
    expect(stdout).not.toContain('overlay');
  });
});

describe('later entries replace earlier ones, as with GNU tar', () => {
  it('matches tar -x on a tar with repeated names', async () => {
    const entries: TarEntry[] = [
      { name: 'f', type: 'file', data: 'one' },
      { name: 'h', type: 'hardlink', linkname: 'f' },
      { name: 'f', type: 'file', data: 'two', mode: 0o600 },
      { name: 'd/', type: 'dir', mode: 0o700 },
      { name: 'd/a', type: 'file', data: 'a' },
      { name: 'd/', type: 'dir', mode: 0o750 },
      { name: 'd/b', type: 'file', data: 'b' },
      { name: 'x', type: 'file', data: 'file first' },
      { name: 'x/', type: 'dir' },
      { name: 'x/inner', type: 'file', data: 'inner' },
      { name: 'n', type: 'fifo' },
      { name: 'n', type: 'file', data: 'not a fifo' },
      { name: 's', type: 'symlink', linkname: 'f' },
      { name: 's', type: 'symlink', linkname: 'd' },
      { name: 'p', type: 'file', data: 'p' },
      { name: 'p', type: 'fifo' },
    ];
    const tar = await writeTar(entries);
    const tarFile = join(scratch, 'repeated.tar');
    await writeFile(tarFile, tar);
    const { dest } = await makeBox();
    const gnu = join(scratch, 'repeated-gnu');
    await mkdir(gnu);
    await run('tar', ['-x', '-p', '--same-owner', '-f', tarFile, '-C', gnu]);
    await unpackTar(tar, dest);
    expect(await describeTree(dest)).toEqual(await describeTree(gnu));
    expect(await readFile(join(dest, 'h'), 'utf8')).toBe('one');
  });
});

/** Type, mode, content or target of every path: enough to compare replacement semantics. */
async function describeTree(root: string, rel = ''): Promise<Record<string, string>> {
  const out: Record<string, string> = {};
  for (const name of (await readdir(join(root, rel))).sort()) {
    const path = rel ? `${rel}/${name}` : name;
    const abs = join(root, path);
    const st = await lstat(abs);
    const mode = (st.mode & 0o7777).toString(8);
    if (st.isDirectory()) {
      out[path] = `dir ${mode}`;
      Object.assign(out, await describeTree(root, path));
    } else if (st.isSymbolicLink()) out[path] = `symlink ${await readlink(abs)}`;
    else if (st.isFIFO()) out[path] = `fifo ${mode}`;
    else out[path] = `file ${mode} ${await readFile(abs, 'utf8')} links=${st.nlink}`;
  }
  return out;
}
