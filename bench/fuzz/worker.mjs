/**
 * One fuzzing process for one target, on a worker thread so the runner can stop it when an input
 * hangs or runs out of memory. Before each run the input is copied into shared memory, so the
 * runner still has it when the worker dies. Inputs whose outcome (error code and message shape)
 * was not seen before join the corpus: a cheap stand-in for coverage feedback.
 */
import { createHash } from 'node:crypto';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { parentPort, workerData } from 'node:worker_threads';
import { mutate, prng } from './mutate.mjs';

const { bundle, target: name, seedsDir, crashesDir, seed, deadline, maxExecs, shared, slowMs } = workerData;
const { targets } = await import(bundle);
const target = targets[name];
// [heartbeat, current input length, 1 while the target runs (0: the harness itself)]
const state = new Int32Array(shared, 0, 3);
const current = new Uint8Array(shared, 12);
const MAX_CORPUS = 4096;
/** Larger inputs are run but not kept to mutate further: stacked growth would slow every run down. */
const MAX_CORPUS_INPUT = 256 * 1024;

const corpus = readdirSync(join(seedsDir, name))
  .sort()
  .map((f) => new Uint8Array(readFileSync(join(seedsDir, name, f))));
if (corpus.length === 0) throw new Error(`no seeds for ${name} in ${seedsDir}`);
const outcomes = new Set();
const crashes = new Set();
const rng = prng(seed);
let execs = 0;

/** The shape of an outcome: error code and message with numbers, names and digests blanked. */
function outcomeOf(error) {
  if (error === undefined) return 'ok';
  const message = String(error.message)
    .replace(/sha256:[0-9a-f]*/g, 'D')
    .replace(/"[^"]*"/g, 'S')
    .replace(/\d+/g, 'N');
  return `${error.code}:${message.slice(0, 120)}`;
}

function saveCrash(input, kind, error) {
  const frame =
    String(error?.stack ?? '')
      .split('\n')
      .find((l) => l.includes('packages/')) ?? '';
  const signature = `${kind}:${error?.constructor?.name}:${outcomeOf(error)}:${frame.trim()}`;
  if (crashes.has(signature)) return;
  crashes.add(signature);
  const id = createHash('sha256').update(input).digest('hex').slice(0, 16);
  writeFileSync(join(crashesDir, `${name}-${kind}-${id}.bin`), input);
  writeFileSync(join(crashesDir, `${name}-${kind}-${id}.txt`), `${signature}\n\n${error?.stack ?? error}\n`);
  parentPort.postMessage({ type: 'crash', signature, file: `${name}-${kind}-${id}.bin` });
}

/** Runs the target once: its error (undefined when it returned) and how long it took. */
function timed(input) {
  const start = performance.now();
  let error;
  state[2] = 1;
  try {
    target.run(input);
  } catch (e) {
    error = e;
  }
  state[2] = 0;
  return { error, ms: performance.now() - start };
}

function runOne(input) {
  if (input.length > current.length) return; // larger than any limit; the runner could not keep it
  state[1] = input.length;
  current.set(input);
  const { error, ms } = timed(input);
  execs++;
  Atomics.add(state, 0, 1);
  if (error !== undefined && !target.expected(error)) return saveCrash(input, 'crash', error);
  if (ms > slowMs) {
    // A GC pause or a busy machine can stretch one run: slow only if the fastest of 3 is slow.
    const fastest = Math.min(ms, timed(input).ms, timed(input).ms);
    if (fastest > slowMs)
      return saveCrash(input, 'slow', new Error(`the fastest of 3 runs took ${Math.round(fastest)} ms`));
  }
  const outcome = outcomeOf(error);
  if (!outcomes.has(outcome) && input.length <= MAX_CORPUS_INPUT) {
    outcomes.add(outcome);
    if (corpus.length < MAX_CORPUS) corpus.push(input);
    else corpus[rng.below(MAX_CORPUS)] = input;
  }
}

for (const input of [...corpus]) runOne(input);
while (Date.now() < deadline && execs < maxExecs) {
  for (let k = 0; k < 256; k++) {
    const parent = corpus[rng.below(corpus.length)];
    runOne(mutate(parent, rng, corpus, target));
  }
  if (execs % 16384 < 256) parentPort.postMessage({ type: 'progress', execs, corpus: corpus.length });
}
parentPort.postMessage({ type: 'done', execs, corpus: corpus.length, outcomes: outcomes.size });
