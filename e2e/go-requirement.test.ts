// scripts/lib/go.sh: which Go lets scripts/test build its tools, and what it says when there is
// none. A stub `go` on PATH stands in for each version (`go env GOVERSION` and `go env GOTOOLCHAIN`
// are all the scripts ask of it).
import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { run } from '@soci-ts/testing';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';

const GO_SH = join(import.meta.dirname, '..', 'scripts', 'lib', 'go.sh');
let dir: string;

beforeAll(async () => {
  dir = await mkdtemp(join(tmpdir(), 'soci-go-stub-'));
});
afterAll(async () => {
  await rm(dir, { recursive: true, force: true });
});

/** Runs `script` after sourcing go.sh, with a stub go of `version` (or none) first on PATH. */
async function withGo(version: string | undefined, script: string, toolchain = 'auto') {
  const bin = join(dir, version ?? 'none');
  await run('mkdir', ['-p', bin]);
  if (version) {
    const stub = join(bin, 'go');
    await writeFile(
      stub,
      `#!/bin/sh\ncase "$2" in GOVERSION) echo ${version} ;; GOTOOLCHAIN) echo ${toolchain} ;; esac\n`,
    );
    await chmod(stub, 0o755);
  }
  // find_go also looks in /usr/local/go and /usr/lib/go: point it at nothing with no stub.
  const guard = version ? '' : 'find_go() { command -v go >/dev/null 2>&1; }; ';
  return run('bash', ['-c', `source ${GO_SH}; ${guard}${script}`], {
    env: { ...process.env, PATH: `${bin}:/usr/bin:/bin` },
  }).then(
    (r) => ({ code: 0, stderr: r.stderr, stdout: r.stdout }),
    (e: Error & { code?: number; stderr?: string }) => ({ code: 1, stderr: e.message, stdout: '' }),
  );
}

describe('scripts/lib/go.sh', () => {
  it('accepts Go 1.25 and later, and 1.21-1.24 only when they may fetch the toolchain', async () => {
    for (const [version, toolchain, usable] of [
      ['go1.19.8', 'auto', false],
      ['go1.20.14', 'auto', false],
      ['go1.21.0', 'auto', true],
      ['go1.24.3', 'local', false],
      ['go1.24.3', 'auto', true],
      ['go1.25.0', 'local', true],
      ['go1.26.8', 'auto', true],
    ] as const) {
      const r = await withGo(version, 'go_usable && echo yes || echo no', toolchain);
      expect(r.stdout.trim(), `${version} GOTOOLCHAIN=${toolchain}`).toBe(usable ? 'yes' : 'no');
    }
  });

  it('require_go stops with the version it needs and the one it found', async () => {
    const old = await withGo('go1.19.8', 'require_go test');
    expect(old.code).toBe(1);
    expect(old.stderr).toMatch(/test: needs Go >= 1\.25 .*found: go1\.19\.8.*go\.dev/);
    const none = await withGo(undefined, 'require_go test');
    expect(none.code).toBe(1);
    expect(none.stderr).toMatch(/found: none/);
    expect((await withGo('go1.26.8', 'require_go test && echo ok')).stdout.trim()).toBe('ok');
  });
});
