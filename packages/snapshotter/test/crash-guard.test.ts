// An unhandled rejection or exception is logged and never ends the daemon's process.
import { spawnTs } from '@soci-ts/testing/process';
import { expect, it } from 'vitest';

it('logs an unhandled rejection and an uncaught exception, and the process goes on', async () => {
  const run = await spawnTs('test/fixtures/crash-guard-child.ts').done;
  expect(run.stdout).toBe('still alive\n');
  expect(run.code).toBe(0);
  const errors = run.stderr
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as { level: number; msg: string; err?: { message: string } });
  expect(errors.map((e) => [e.level, e.err?.message])).toEqual([
    [50, 'nobody handles this'],
    [50, 'thrown from a timer'],
  ]);
  expect(errors.every((e) => /a soci-ts bug/.test(e.msg))).toBe(true);
}, 60_000);
