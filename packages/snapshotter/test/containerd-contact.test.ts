// The daemon asks containerd for its version at first contact and logs what it means; the answer
// never gates a call.
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import {
  ContainerdContact,
  ContainerdContactError,
  judgeVersion,
  parseReleaseLine,
} from '../src/containerd-contact.js';

function capturingLogger() {
  const lines: Record<string, unknown>[] = [];
  const stream = new Writable({
    write(chunk, _enc, done) {
      for (const l of String(chunk).split('\n').filter(Boolean)) lines.push(JSON.parse(l));
      done();
    },
  });
  return { logger: pino({ level: 'debug' }, stream), lines };
}

describe('parseReleaseLine', () => {
  it.each([
    ['v2.2.9', { major: 2, minor: 2 }],
    ['1.6.20~ds1', { major: 1, minor: 6 }],
    ['2.2.0+unknown', { major: 2, minor: 2 }],
    ['v1.7.35', { major: 1, minor: 7 }],
    ['10.11', { major: 10, minor: 11 }],
  ])('%s', (text, want) => expect(parseReleaseLine(text)).toEqual(want));

  it.each(['', 'dev', 'v2', 'x1.6.0'])('%j is no release', (text) =>
    expect(parseReleaseLine(text)).toBeUndefined());
});

describe('judgeVersion', () => {
  it('knows the tested lines', () => {
    expect(judgeVersion({ version: 'v2.2.9', revision: 'r' }).tested).toBe(true);
    expect(judgeVersion({ version: '1.6.20~ds1', revision: 'r' }).tested).toBe(true);
    expect(judgeVersion({ version: 'v2.0.4', revision: 'r' }).tested).toBe(false);
  });

  it('calls a release before 1.6 too old, with what to do', () => {
    const err = (() => {
      try {
        judgeVersion({ version: 'v1.5.18', revision: 'r' });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ContainerdContactError);
    expect((err as ContainerdContactError).code).toBe('SNAPSHOTTER_CONTAINERD_TOO_OLD');
    expect((err as Error).message).toMatch(/1\.5\.18.*upgrade containerd/);
  });
});

describe('ContainerdContact', () => {
  it('asks once, however many calls come, and logs the version at info for a tested release', async () => {
    const { logger, lines } = capturingLogger();
    let asked = 0;
    const seen: string[] = [];
    const contact = new ContainerdContact({
      address: '/run/x.sock',
      logger,
      askVersion: async () => {
        asked++;
        return { version: 'v2.2.9', revision: 'abc' };
      },
      onVersion: (v) => seen.push(v.version),
    });
    expect(contact.checked).toBeUndefined();
    for (let i = 0; i < 5; i++) contact.first();
    const verdict = await contact.checked;
    expect(asked).toBe(1);
    expect(seen).toEqual(['v2.2.9']);
    expect(verdict).toMatchObject({ major: 2, minor: 2, tested: true });
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 30, containerdVersion: 'v2.2.9', msg: 'containerd contacted' });
  });

  it('warns once about an untested release', async () => {
    const { logger, lines } = capturingLogger();
    const contact = new ContainerdContact({
      address: '/run/x.sock',
      logger,
      askVersion: async () => ({ version: 'v2.0.1', revision: 'abc' }),
    });
    contact.first();
    await contact.checked;
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, containerdVersion: 'v2.0.1' });
    expect(String(lines[0]!.msg)).toMatch(/not been tested/);
  });

  it('turns a containerd that never answers into one warning with a typed error, within the timeout', async () => {
    const { logger, lines } = capturingLogger();
    const contact = new ContainerdContact({
      address: '/run/silent.sock',
      logger,
      timeoutMs: 50,
      askVersion: () => new Promise(() => {}),
    });
    const t0 = Date.now();
    contact.first();
    const verdict = await contact.checked;
    expect(Date.now() - t0).toBeLessThan(2_000);
    expect(verdict).toBeInstanceOf(ContainerdContactError);
    expect((verdict as ContainerdContactError).code).toBe('SNAPSHOTTER_CONTAINERD_UNREACHABLE');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({
      level: 40,
      code: 'SNAPSHOTTER_CONTAINERD_UNREACHABLE',
      address: '/run/silent.sock',
    });
    expect(String(lines[0]!.msg)).toMatch(/containerd_address/);
  });

  it('reports a socket nobody listens on as unreachable (the real gRPC client)', async () => {
    const { logger, lines } = capturingLogger();
    const contact = new ContainerdContact({
      address: '/nonexistent/containerd.sock',
      logger,
      timeoutMs: 5_000,
    });
    contact.first();
    const verdict = await contact.checked;
    expect((verdict as ContainerdContactError).code).toBe('SNAPSHOTTER_CONTAINERD_UNREACHABLE');
    expect(lines).toHaveLength(1);
  });

  it('logs a too-old release as an error code, once', async () => {
    const { logger, lines } = capturingLogger();
    const contact = new ContainerdContact({
      address: '/run/x.sock',
      logger,
      askVersion: async () => ({ version: '1.4.13', revision: 'r' }),
    });
    contact.first();
    contact.first();
    expect(((await contact.checked) as ContainerdContactError).code).toBe('SNAPSHOTTER_CONTAINERD_TOO_OLD');
    expect(lines).toHaveLength(1);
    expect(lines[0]).toMatchObject({ level: 40, code: 'SNAPSHOTTER_CONTAINERD_TOO_OLD' });
  });
});
