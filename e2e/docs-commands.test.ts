// The commands of docs/*.md, run as a reader would run them, against a real stack: a registry
// without the referrers API (Debian's docker-registry), one with it (go-containerregistry's),
// containerd (the release under test, SOCI_TS_CONTAINERD), the FUSE keeper and the soci-snapshotter
// daemon, the built `soci` CLI, and nerdctl (built by scripts/install-go-tools).
//
// Which blocks run: every fenced block whose info string has `docs-test` (e2e/support/docs-blocks.ts
// says how to write one). A page's marked blocks run in order in one bash process, so shell
// variables carry from one block to the next; each must exit 0 and print what its `# expect:` lines
// name. Blocks marked `containerd=1` or `containerd=2` run only on that containerd major version
// (run this file on v2.2.9 and on `system` to run both). The test fails when a marker is malformed,
// when a page listed in RUNNABLE_PAGES has no marked block, when a shell block is neither marked nor
// needs an UNRUNNABLE command nor says why it is not run (`<!-- docs-test skip: REASON -->` before
// it), and unless every marked block ran.
//
// The documented placeholders, replaced in blocks and expectations before they run:
//   127.0.0.1:5000               the stack's registry without the referrers API
//   127.0.0.1:5001               the registry with the referrers API
//   127.0.0.1:9880               the daemon's metrics address
//   /run/soci-ts/soci-snapshotter.sock   the daemon's socket
//   /var/lib/soci-ts/recorded    the daemon's [prefetch] record_dir
//   /etc/soci-ts/, /etc/soci-snapshotter-grpc/, /etc/containerd/   directories in this test's temp dir
// Images the test pushes first: 127.0.0.1:5000/demo/{app,web,py,nerd}:v1, each two layers of its own
// (/bin/busybox and /etc/image-<name>; /app/hello.txt and /app/data/{a,b}.bin, and for app also
// /hello.txt and an 11 MiB /app/data/big.bin, so that `soci create` indexes it with its defaults).
// The commands themselves are wrappers on the PATH: `soci` (the built CLI; `soci pull` gets the
// stack's containerd socket and namespace), `soci-snapshotter` (only with --print-config or --help:
// a block never starts a second daemon), `ctr` and `containerd` (the release under test, ctr with the
// stack's socket and namespace), `nerdctl` (with the stack's socket, namespace and a data root here).
//
// Not run here, and so not marked (UNRUNNABLE lists the commands; the test checks that no marked block
// uses them and that the pages below are exactly those whose unmarked blocks do):
//   ecr-eks.md         aws, ECR, EKS, the credential helper, systemctl, journalctl
//   install.md         systemctl, journalctl (the systemd units)
//   kubernetes.md      apt-get, systemctl, crictl (a node install; CRI is covered by cri.test.ts)
//   prefetch.md        journalctl (the daemon's log under systemd)
//   registries.md      a registry with a login (no such registry here)
//   releasing.md       changeset, git commit, npm publish (the release steps)
// The shell blocks with a `docs-test skip` line say why there (they build the repository, start the
// daemon, write to /usr/local/bin, or hold placeholders such as <chain id>).
// DOCS_TEST_PRINT=1 prints what each page's blocks printed.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { chmod, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { buildBusyboxImage, type LayerSpec } from '@soci-ts/testing/busybox-image';
import { noiseBytes } from '@soci-ts/testing/bytes';
import { containerdUnderTest } from '@soci-ts/testing/containerd-release';
import { type BuiltImage, pushLayout } from '@soci-ts/testing/images';
import { run } from '@soci-ts/testing/process';
import { type RegistryProcess, startReferrersRegistry } from '@soci-ts/testing/registry';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type DocBlock, pageScript, readDocBlocks, splitOutput, substitute } from './support/docs-blocks.js';
import { REPO_ROOT, SNAPSHOTTER_BIN, SOCI_BIN, type Stack, startStack } from './support/stack.js';

const DOCS = join(REPO_ROOT, 'docs');
/** Pages that must keep at least one marked block. */
const RUNNABLE_PAGES = [
  'getting-started.md',
  'install.md',
  'migrating-from-aws-soci.md',
  'nerdctl.md',
  'prefetch.md',
  'registries.md',
];
/** Commands that cannot run here: never in a marked block. */
const UNRUNNABLE: [string, RegExp][] = [
  ['aws', /(^|[\s|(])aws\s/m],
  ['eksctl', /\beksctl\b/],
  ['kubectl', /\bkubectl\b/],
  ['systemctl', /\bsystemctl\b/],
  ['journalctl', /\bjournalctl\b/],
  ['crictl', /\bcrictl\b/],
  ['apt-get', /\bapt-get\b/],
  ['a credential helper', /docker-credential-/],
  ['a registry with a login', /https:\/\/REGISTRY/],
  ['release steps', /\bchangeset\b|\bgit commit\b|\bnpm publish\b/],
];
/** Pages whose unmarked blocks use UNRUNNABLE commands (see the header). */
const PAGES_WITH_UNRUNNABLE = [
  'ecr-eks.md',
  'install.md',
  'kubernetes.md',
  'prefetch.md',
  'registries.md',
  'releasing.md',
];
const IMAGES = ['app', 'web', 'py', 'nerd'];
const GO_BIN = process.env.SOCI_TS_GO_BIN ?? '/opt/soci-ts/bin';
const NERDCTL = join(GO_BIN, 'nerdctl');

const blocks = readDocBlocks(DOCS);
const marked = blocks.filter((b) => b.marked);
const pages = [...new Set(marked.map((b) => b.page))];
const at = (b: DocBlock) => `docs/${b.page}:${b.line}`;

describe('docs-test markers', () => {
  it('every page that should has runnable blocks', () => {
    for (const page of RUNNABLE_PAGES) expect(pages, `${page} has no docs-test block`).toContain(page);
  });

  it('no marked block needs what this machine lacks, and the header names the pages that do', () => {
    const needs = (b: DocBlock) => UNRUNNABLE.filter(([, re]) => re.test(b.body)).map(([name]) => name);
    for (const b of marked) expect(needs(b), `${at(b)} is marked but needs`).toEqual([]);
    const unmarkedPages = [...new Set(blocks.filter((b) => !b.marked && needs(b).length).map((b) => b.page))];
    expect(unmarkedPages.sort()).toEqual(PAGES_WITH_UNRUNNABLE);
  });

  it('every shell block runs, needs what this machine lacks, or says why it does not run', () => {
    for (const b of blocks.filter((x) => x.lang === 'sh' && !x.marked)) {
      const needs = UNRUNNABLE.some(([, re]) => re.test(b.body));
      expect(
        needs || b.skip !== undefined,
        `${at(b)}: mark it docs-test or give <!-- docs-test skip: REASON -->`,
      ).toBe(true);
    }
  });

  it('marked blocks use only the documented placeholders and images', () => {
    for (const b of marked) {
      const text = `${b.body}\n${b.attrs.file ?? ''}`;
      for (const [host] of text.matchAll(/\b127\.0\.0\.1:\d+/g)) {
        expect(['127.0.0.1:5000', '127.0.0.1:5001', '127.0.0.1:9880'], `${at(b)} uses ${host}`).toContain(
          host,
        );
      }
      for (const [, name] of text.matchAll(/127\.0\.0\.1:500[01]\/demo\/([a-z]+):v1(?![-\w])/g)) {
        expect(IMAGES, `${at(b)} uses an image the test does not push`).toContain(name);
      }
    }
  });
});

describe(`docs commands on containerd ${containerdUnderTest().version}`, () => {
  const major = String(containerdUnderTest().major);
  const ran = new Set<DocBlock>();
  const skipped = new Set<DocBlock>();
  let stack: Stack;
  let referrers: RegistryProcess;
  let work: string;
  let recordDir: string;
  let values: Map<string, string>;
  let env: NodeJS.ProcessEnv;
  const images: BuiltImage[] = [];

  beforeAll(async () => {
    work = await mkdtemp(join(tmpdir(), 'soci-docs-'));
    recordDir = join(work, 'recorded');
    if (pages.includes('nerdctl.md') && !existsSync(NERDCTL)) {
      await run('bash', [join(REPO_ROOT, 'scripts/install-go-tools')]);
    }
    stack = await startStack({ recordDir });
    referrers = await startReferrersRegistry();
    for (const [i, name] of IMAGES.entries()) {
      const big: LayerSpec =
        name === 'app'
          ? { '/hello.txt': 'hello from app\n', '/app/data/big.bin': noiseBytes(11 * 1024 * 1024, 99) }
          : {};
      const image = await buildBusyboxImage([
        { '/bin/busybox': { busybox: true }, [`/etc/image-${name}`]: `${name}\n` },
        {
          '/app/hello.txt': `hello from ${name}\n`,
          '/app/data/a.bin': noiseBytes(256 * 1024, 10 * i + 1),
          '/app/data/b.bin': noiseBytes(256 * 1024, 10 * i + 2),
          ...big,
        },
      ]);
      images.push(image);
      await pushLayout(image, { host: stack.registry.host, repository: `demo/${name}`, tag: 'v1' });
    }
    values = new Map([
      ['127.0.0.1:5000', stack.registry.host],
      ['127.0.0.1:5001', referrers.host],
      ['127.0.0.1:9880', new URL(stack.metricsUrl).host],
      // startStack's socket (e2e/support/stack.ts)
      ['/run/soci-ts/soci-snapshotter.sock', join(stack.dir, 'soci.sock')],
      ['/var/lib/soci-ts/recorded', recordDir],
      ['/etc/soci-ts/', join(work, 'etc/soci-ts/')],
      ['/etc/soci-snapshotter-grpc/', join(work, 'etc/soci-snapshotter-grpc/')],
      ['/etc/containerd/', join(work, 'etc/containerd/')],
    ]);
    env = await wrappers(work, stack);
  }, 900_000);

  afterAll(async () => {
    await stack?.stop();
    await referrers?.stop();
    for (const image of images) await image.cleanup();
    if (work) await rm(work, { recursive: true, force: true });
  });

  for (const page of pages) {
    it(`docs/${page}`, async () => {
      const all = marked.filter((b) => b.page === page);
      const runnable = all.filter((b) => b.attrs.containerd === undefined || b.attrs.containerd === major);
      for (const b of all) if (!runnable.includes(b)) skipped.add(b);
      const script = join(work, `${page}.sh`);
      await writeFile(script, pageScript(runnable, values));
      const { code, output } = await runScript(script, work, env, 300_000);
      const { perBlock, ended } = splitOutput(output);
      if (process.env.DOCS_TEST_PRINT) console.log(`===== ${page}\n${output}`);
      for (const [n, b] of runnable.entries()) {
        const printed = perBlock.get(n);
        const failed = printed !== undefined && !perBlock.has(n + 1) && !ended;
        const context = `${at(b)} printed:\n${printed ?? '(did not run)'}\n${failed ? `exit code ${code}\n` : ''}daemon log tail:\n${stack.daemon.output().slice(-1500)}`;
        expect(printed, context).toBeDefined();
        expect(failed, context).toBe(false);
        for (const text of b.expects) expect(printed, context).toContain(substitute(text, values));
        for (const text of b.expectNots) expect(printed, context).not.toContain(substitute(text, values));
        ran.add(b);
      }
      expect(ended, `the script of docs/${page} did not run to its end (exit code ${code})`).toBe(true);
      expect(code).toBe(0);
    }, 360_000);
  }

  it('ran every marked block but those for the other containerd major version', () => {
    const notRun = marked.filter((b) => !ran.has(b) && !skipped.has(b)).map(at);
    expect(notRun).toEqual([]);
    for (const b of skipped) expect(b.attrs.containerd, at(b)).not.toBe(major);
    expect(ran.size + skipped.size).toBe(marked.length);
  });
});

/** A directory of wrapper commands first on the PATH, and the environment the blocks run in. */
async function wrappers(work: string, stack: Stack): Promise<NodeJS.ProcessEnv> {
  const bin = join(work, 'bin');
  await mkdir(bin, { recursive: true });
  const release = containerdUnderTest();
  // Absolute paths: the wrappers are named like the programs they run.
  const which = async (program: string) =>
    (
      await run('sh', ['-c', `command -v ${program}`], { env: { ...process.env, PATH: release.path } })
    ).stdout.trim();
  const ctr = await which(release.ctr);
  const containerd = await which(release.containerd);
  const { address, namespace } = stack.containerd;
  const scripts: Record<string, string> = {
    soci: `if [ "$1" = pull ]; then shift; exec node ${SOCI_BIN} pull --address ${address} -n ${namespace} "$@"; fi
exec node ${SOCI_BIN} "$@"`,
    'soci-snapshotter': `case " $* " in *" --print-config "*|*" --help "*) exec node ${SNAPSHOTTER_BIN} "$@";; esac
echo "docs-test: a docs block may not start another soci-snapshotter daemon" >&2; exit 99`,
    ctr: `exec ${ctr} --address ${address} -n ${namespace} "$@"`,
    containerd: `exec ${containerd} "$@"`,
    nerdctl: `exec ${NERDCTL} --address ${address} --namespace ${namespace} --data-root ${join(work, 'nerdctl')} --cgroup-manager cgroupfs "$@"`,
  };
  for (const [name, body] of Object.entries(scripts)) {
    await writeFile(join(bin, name), `#!/bin/sh\n${body}\n`);
    await chmod(join(bin, name), 0o755);
  }
  return {
    ...process.env,
    PATH: `${bin}:${release.path}`,
    SOCI_ROOT: join(work, 'soci-store'),
    DOCKER_CONFIG: join(work, 'docker'),
    CONTAINERD_ADDRESS: address,
    CONTAINERD_NAMESPACE: namespace,
  };
}

/** Runs a page's script with bash; resolves with its exit code and what it printed. */
function runScript(
  script: string,
  cwd: string,
  env: NodeJS.ProcessEnv,
  timeoutMs: number,
): Promise<{ code: number | null; output: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn('bash', [script], { cwd, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout.on('data', (b: Buffer) => {
      output += b.toString();
    });
    child.stderr.on('data', (b: Buffer) => {
      output += b.toString();
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, output });
    });
  });
}
