#!/usr/bin/env node
/**
 * Fuzzes soci-ts's parsers of untrusted bytes, one target at a time (see README.md):
 *
 *   node bench/fuzz/run.mjs --target ztoc --seconds 60 [--execs N] [--seed S]
 *   node bench/fuzz/run.mjs --all --execs 1000000      every target in turn
 *   node bench/fuzz/run.mjs --target tar --replay FILE  runs one input and prints the outcome
 *   node bench/fuzz/run.mjs --list
 *
 * The targets are bundled from the packages' TypeScript sources with esbuild; seeds come from real
 * tools (seeds.ts) and are cached in bench/.work/fuzz/seeds. Crashes (an exception other than the
 * owning package's typed error, a failed invariant, an input over --slow-ms, out of memory, a
 * hang) are written to bench/.work/fuzz/crashes. Prints one line per target:
 * `target=<name> execs=<n> seconds=<s> execs_per_second=<r> crashes=<c> outcomes=<o>`, where
 * outcomes counts the distinct answers seen (a value, or an error code and message shape).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { build } from 'esbuild';

const here = dirname(fileURLToPath(import.meta.url));
const work = resolve(here, '..', '.work', 'fuzz');
const { values: o } = parseArgs({
  options: {
    target: { type: 'string' },
    all: { type: 'boolean', default: false },
    seconds: { type: 'string', default: '60' },
    execs: { type: 'string', default: String(Number.MAX_SAFE_INTEGER) },
    seed: { type: 'string', default: String(Date.now() % 2 ** 31) },
    'slow-ms': { type: 'string', default: '250' },
    'hang-ms': { type: 'string', default: '5000' },
    'heap-mb': { type: 'string', default: '768' },
    replay: { type: 'string' },
    list: { type: 'boolean', default: false },
    reseed: { type: 'boolean', default: false },
  },
});

const MAX_INPUT = 8 << 20;

/** Bundles the TypeScript entry points (sources of the packages, not their dist) into .mjs files. */
async function bundle(name) {
  const outfile = join(work, `${name}.mjs`);
  await build({
    entryPoints: [join(here, `${name}.ts`)],
    outfile,
    bundle: true,
    platform: 'node',
    format: 'esm',
    target: 'node20',
    conditions: ['source'],
    logLevel: 'error',
    banner: {
      js: "import { createRequire } from 'node:module'; const require = createRequire(import.meta.url);",
    },
  });
  return pathToFileURL(outfile).href;
}

async function ensureSeeds() {
  const dir = join(work, 'seeds');
  if (o.reseed || !existsSync(dir)) {
    const { writeSeeds } = await import(await bundle('seeds'));
    const counts = await writeSeeds(dir);
    console.log(
      `seeds: ${Object.entries(counts)
        .map(([t, n]) => `${t}=${n}`)
        .join(' ')}`,
    );
  }
  return dir;
}

/** Fuzzes one target until `seconds` or `execs` run out; restarts the worker after a hang or OOM. */
function fuzz(bundleUrl, target, seedsDir, crashesDir) {
  const seconds = Number(o.seconds);
  const maxExecs = Number(o.execs);
  const start = Date.now();
  const deadline = start + seconds * 1000;
  let execs = 0;
  let crashes = 0;
  let harnessFailures = 0;
  let outcomes = 0;
  let round = 0;
  return new Promise((done) => {
    const startWorker = () => {
      const shared = new SharedArrayBuffer(12 + MAX_INPUT);
      const state = new Int32Array(shared, 0, 3);
      let seen = 0;
      let lastBeat = 0;
      let lastChange = Date.now();
      let finished = false;
      const worker = new Worker(join(here, 'worker.mjs'), {
        workerData: {
          bundle: bundleUrl,
          target,
          seedsDir,
          crashesDir,
          seed: Number(o.seed) + round++,
          deadline,
          maxExecs: maxExecs - execs,
          shared,
          slowMs: Number(o['slow-ms']),
        },
        resourceLimits: { maxOldGenerationSizeMb: Number(o['heap-mb']) },
      });
      const saveCurrent = (kind, why) => {
        // Dying between runs (in the mutator) is the harness's fault, not the target's.
        if (state[2] === 0) {
          harnessFailures++;
          console.log(`HARNESS ${target} ${kind} between runs: ${why}`);
          return;
        }
        const input = new Uint8Array(shared, 12, Math.max(0, state[1])).slice();
        const file = join(crashesDir, `${target}-${kind}-${Date.now()}.bin`);
        writeFileSync(file, input);
        writeFileSync(file.replace(/\.bin$/, '.txt'), `${why}\n`);
        crashes++;
        console.log(`CRASH ${target} ${kind}: ${why} -> ${file}`);
      };
      const watchdog = setInterval(() => {
        const beat = Atomics.load(state, 0);
        if (beat !== lastBeat) {
          lastBeat = beat;
          lastChange = Date.now();
        } else if (Date.now() - lastChange > Number(o['hang-ms'])) {
          saveCurrent('hang', `no progress for ${o['hang-ms']} ms`);
          worker.terminate();
        }
      }, 250);
      worker.on('message', (m) => {
        if (m.type === 'crash') {
          crashes++;
          console.log(`CRASH ${target}: ${m.signature} -> ${join(crashesDir, m.file)}`);
        } else if (m.type === 'progress' || m.type === 'done') {
          seen = m.execs;
          if (m.type === 'done') {
            finished = true;
            outcomes = Math.max(outcomes, m.outcomes);
          }
        }
      });
      worker.on('error', (e) =>
        saveCurrent(e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'oom' : 'worker', String(e)),
      );
      worker.on('exit', () => {
        clearInterval(watchdog);
        // Runs that died count up to their last heartbeat.
        execs += finished ? seen : Math.max(seen, Atomics.load(state, 0));
        if (!finished && Date.now() < deadline && execs < maxExecs) return startWorker();
        const secs = (Date.now() - start) / 1000;
        done({ target, execs, seconds: secs, crashes, harnessFailures, outcomes });
      });
    };
    startWorker();
  });
}

mkdirSync(work, { recursive: true });
const bundleUrl = await bundle('targets');
const { targets } = await import(bundleUrl);
if (o.list) {
  for (const [name, t] of Object.entries(targets)) console.log(`${name.padEnd(15)} ${t.about}`);
  process.exit(0);
}
if (o.replay) {
  const t = targets[o.target];
  if (!t) throw new Error(`--replay needs --target (one of ${Object.keys(targets).join(', ')})`);
  const start = performance.now();
  try {
    t.run(new Uint8Array(readFileSync(o.replay)));
    console.log(`ok in ${(performance.now() - start).toFixed(1)} ms`);
  } catch (e) {
    console.log(
      `${t.expected(e) ? 'expected' : 'CRASH'} in ${(performance.now() - start).toFixed(1)} ms:`,
      e,
    );
  }
  process.exit(0);
}
const names = o.all ? Object.keys(targets) : [o.target];
for (const name of names) {
  if (!targets[name]) throw new Error(`unknown target ${name}; --list shows them`);
}
const seedsDir = await ensureSeeds();
const crashesDir = join(work, 'crashes');
mkdirSync(crashesDir, { recursive: true });
let failed = false;
for (const name of names) {
  const r = await fuzz(bundleUrl, name, seedsDir, crashesDir);
  const harness = r.harnessFailures ? ` harness_failures=${r.harnessFailures}` : '';
  console.log(
    `target=${r.target} execs=${r.execs} seconds=${r.seconds.toFixed(0)} execs_per_second=${Math.round(r.execs / r.seconds)} crashes=${r.crashes} outcomes=${r.outcomes}${harness}`,
  );
  failed ||= r.crashes > 0 || r.harnessFailures > 0;
}
process.exit(failed ? 1 : 0);
