// Registry credentials from the command line: -u user:password, and -u user with the password on
// standard input (--password-stdin, as docker login, nerdctl and oras take it), against a
// registry with basic auth; and the usage errors around them (exit code 2).
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { pushLayout, type RegistryProcess, run, startRegistry } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { buildFixtureImage, type FixtureImage } from '../../soci-index/test/fixture.js';
import { bufferIo, main } from '../src/index.js';
import { tempRoot } from './helpers.js';

const USER = 'builder';
const PASSWORD = 'pw with spaces:and-colon';
const BUILD = ['--min-layer-size', '65536', '--span-size', '65536', '--quiet'];

let registry: RegistryProcess;
/** A second registry, without auth: convert reads from one and pushes to the other. */
let open: RegistryProcess;
let image: FixtureImage;
let ref: string;
let openRef: string;

beforeAll(async () => {
  [registry, open, image] = await Promise.all([
    startRegistry({ htpasswd: { user: USER, password: PASSWORD } }),
    startRegistry(),
    buildFixtureImage(),
  ]);
  const layout = { layout: image.layout, tag: image.tag } as never;
  ref = await pushLayout(layout, {
    host: registry.host,
    repository: 'private',
    credentials: { user: USER, password: PASSWORD },
  });
  openRef = await pushLayout(layout, { host: open.host, repository: 'public' });
});

afterAll(async () => {
  await Promise.all([registry?.stop(), open?.stop(), image?.cleanup()]);
});

/** `soci create <ref>` into a fresh store, in-process, with `stdin` as standard input. */
async function create(stdin: string, ...args: string[]) {
  const io = bufferIo({ stdin });
  const code = await main(['create', ref, '--root', await tempRoot(), ...args, ...BUILD], io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

describe('--password-stdin', () => {
  it('reads the password from standard input (its line ending dropped)', async () => {
    const r = await create(`${PASSWORD}\n`, '-u', USER, '--password-stdin');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('a wrong password is refused by the registry (exit 1), and so is no password at all', async () => {
    const wrong = await create('nope\n', '-u', USER, '--password-stdin');
    expect(wrong.code).toBe(1);
    expect(wrong.stderr).toMatch(/401|unauthori[sz]ed|credentials/i);
    expect((await create('')).code).toBe(1);
  });

  it('-u user:password still works without it', async () => {
    const r = await create('', '-u', `${USER}:${PASSWORD}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('bad combinations are usage errors (exit 2) that say what to give', async () => {
    for (const [stdin, args, message] of [
      [PASSWORD, ['--password-stdin'], /--password-stdin needs -u <user>/],
      [PASSWORD, ['-u', `${USER}:x`, '--password-stdin'], /give -u <user> alone/],
      ['\n', ['-u', USER, '--password-stdin'], /empty password/],
      ['', ['-u', USER], /-u takes user:password, or -u user with --password-stdin/],
    ] as const) {
      const r = await create(stdin, ...args);
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toMatch(message);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
    }
  });

  const bin = join(import.meta.dirname, '..', 'dist', 'bin.js');
  it('the built bin reads the process standard input', async () => {
    expect(existsSync(bin), 'build soci-cli first').toBe(true);
    const r = await run(
      'node',
      [bin, 'create', ref, '--root', await tempRoot(), '-u', USER, '--password-stdin', ...BUILD],
      {
        input: `${PASSWORD}\n`,
      },
    );
    expect(r.stderr).toBe('');
  });
});

describe('soci convert between two registries, one with auth', () => {
  /** `soci convert src dst` into a fresh store; exit code and one-line stderr. */
  async function convert(src: string, dst: string, ...args: string[]) {
    const io = bufferIo({ stdin: `${PASSWORD}\n` });
    const code = await main(['convert', src, dst, '--root', await tempRoot(), ...args, ...BUILD], io);
    return { code, stderr: io.stderr };
  }

  it("-u is the destination's: from the open registry to the one with auth", async () => {
    const r = await convert(openRef, `${registry.host}/converted:v2`, '-u', `${USER}:${PASSWORD}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const piped = await convert(openRef, `${registry.host}/converted:v3`, '-u', USER, '--password-stdin');
    expect(piped.stderr).toBe('');
    expect(piped.code).toBe(0);
  });

  it("--src-user is the source's; -u never goes to the source registry", async () => {
    const r = await convert(ref, `${open.host}/from-private:v2`, '--src-user', `${USER}:${PASSWORD}`);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const withDstUser = await convert(ref, `${open.host}/from-private:v3`, '-u', `${USER}:${PASSWORD}`);
    expect(withDstUser.code).toBe(1);
    expect(withDstUser.stderr).toMatch(/401|unauthori[sz]ed|credentials/i);
  });

  it('--src-user with a source in the destination registry is a usage error', async () => {
    const r = await convert(ref, `${registry.host}/again:v2`, '--src-user', `${USER}:${PASSWORD}`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--src-user is for a source in another registry/);
  });
});
