// Which containerd the tests run against. scripts/install-containerd builds releases from
// containerd's Go module into /opt/soci-ts/containerd/<version>/bin; Debian's containerd (1.6) is on
// PATH. SOCI_TS_CONTAINERD picks one for a whole test run, so scripts/test can run the e2e suite once
// per release:
//
//   unset or "system"   containerd, ctr and the runc shim found on PATH (Debian's)
//   "v2.2.9"            /opt/soci-ts/containerd/v2.2.9/bin (SOCI_TS_CONTAINERD_DIR moves the root)
//   "/some/dir"         a directory holding containerd, ctr and containerd-shim-runc-v2
import { execFileSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { isAbsolute, join } from 'node:path';

export interface ContainerdRelease {
  /** What `containerd --version` said, e.g. "1.6.20~ds1" or "v2.2.9". */
  version: string;
  major: number;
  minor: number;
  /** The containerd binary. */
  containerd: string;
  /** The ctr binary of the same release. */
  ctr: string;
  /**
   * PATH for containerd's process: the release's own directory first, so that containerd starts the
   * runc shim of its own release (it looks the shim up on PATH).
   */
  path: string;
}

const DEFAULT_ROOT = '/opt/soci-ts/containerd';

/** Parses `containerd --version` ("containerd github.com/containerd/containerd/v2 v2.2.9 REV"). */
export function parseContainerdVersion(output: string): { version: string; major: number; minor: number } {
  const m = /\s(v?(\d+)\.(\d+)\.\S*)/.exec(output);
  if (!m) throw new Error(`cannot read a version from containerd --version: ${JSON.stringify(output)}`);
  return { version: m[1]!, major: Number(m[2]), minor: Number(m[3]) };
}

/** The release named by `choice` (default: SOCI_TS_CONTAINERD), with its version read from the binary. */
export function containerdRelease(choice = process.env.SOCI_TS_CONTAINERD ?? 'system'): ContainerdRelease {
  let binDir: string | undefined;
  if (choice !== 'system' && choice !== '') {
    binDir = isAbsolute(choice)
      ? choice
      : join(process.env.SOCI_TS_CONTAINERD_DIR ?? DEFAULT_ROOT, choice, 'bin');
    if (!existsSync(join(binDir, 'containerd'))) {
      throw new Error(
        `SOCI_TS_CONTAINERD=${choice}: ${binDir}/containerd is missing; build it with scripts/install-containerd ${choice}`,
      );
    }
  }
  const containerd = binDir ? join(binDir, 'containerd') : 'containerd';
  const ctr = binDir ? join(binDir, 'ctr') : 'ctr';
  const path = binDir ? `${binDir}:${process.env.PATH ?? ''}` : (process.env.PATH ?? '');
  const output = execFileSync(containerd, ['--version'], { encoding: 'utf8' });
  return { ...parseContainerdVersion(output), containerd, ctr, path };
}

let underTest: ContainerdRelease | undefined;
/** The release this test run uses (SOCI_TS_CONTAINERD), read once. */
export function containerdUnderTest(): ContainerdRelease {
  underTest ??= containerdRelease();
  return underTest;
}
