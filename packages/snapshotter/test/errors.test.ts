// Every error of the snapshotter is a SociError with a SNAPSHOTTER_ code, and SnapshotErrors keep
// the gRPC statuses and `<context>: <class text>` messages containerd parses.
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { isSociError, SociError } from '@soci-ts/errors';
import { ZtocError } from '@soci-ts/ztoc';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseConfig } from '../src/config.js';
import { ConfigError } from '../src/config-error.js';
import {
  type ContainerdContactError,
  type ContainerdContactErrorCode,
  judgeVersion,
} from '../src/containerd-contact.js';
import { claimSocket, type DaemonStartError } from '../src/daemon.js';
import {
  alreadyExists,
  failedPrecondition,
  invalidArgument,
  notFound,
  SNAPSHOT_ERROR_CODES,
  SnapshotError,
  type SnapshotErrorCode,
  toGrpcError,
} from '../src/errors.js';
import { type FilterSyntaxError, parseFilter } from '../src/filters.js';
import { decodeState, type MetadataStoreError, type MetadataStoreErrorCode } from '../src/metadata-store.js';
import { DecodeError } from '../src/unpack/decoder.js';
import { UnpackError, type UnpackErrorCode } from '../src/unpack/errors.js';
import { classify } from '../src/unpack/layer-extraction.js';
import { withTempDir } from './helpers.js';

/**
 * What each code meant before the codes were prefixed: containerd's errdefs class text and the
 * gRPC status number (grpc/codes), written as numbers so a change of the mapping cannot hide.
 */
const CONTAINERD_CLASS: Record<SnapshotErrorCode, { status: number; text: string }> = {
  SNAPSHOTTER_NOT_FOUND: { status: 5, text: 'not found' },
  SNAPSHOTTER_ALREADY_EXISTS: { status: 6, text: 'already exists' },
  SNAPSHOTTER_FAILED_PRECONDITION: { status: 9, text: 'failed precondition' },
  SNAPSHOTTER_INVALID_ARGUMENT: { status: 3, text: 'invalid argument' },
  SNAPSHOTTER_UNAVAILABLE: { status: 14, text: 'unavailable' },
  SNAPSHOTTER_UNKNOWN: { status: 2, text: 'unknown' },
};

describe('toGrpcError', () => {
  it('knows every SnapshotError code', () => {
    expect([...SNAPSHOT_ERROR_CODES].sort()).toEqual(Object.keys(CONTAINERD_CLASS).sort());
  });

  const table = Object.entries(CONTAINERD_CLASS).map(
    ([code, { status, text }]) => [code, status, text] as const,
  );
  it.each(table)('maps %s to status %i and the class text "%s"', (code, status, text) => {
    const err = new SnapshotError(code as SnapshotErrorCode, 'snapshot ns/1/a');
    expect(toGrpcError(err)).toEqual({ code: status, details: `snapshot ns/1/a: ${text}` });
  });

  it('keeps any context in front of the class text containerd strips', () => {
    fc.assert(
      fc.property(fc.constantFrom(...SNAPSHOT_ERROR_CODES), fc.string(), (code, context) => {
        const { code: status, details } = toGrpcError(new SnapshotError(code, context));
        expect(status).toBe(CONTAINERD_CLASS[code].status);
        expect(details).toBe(`${context}: ${CONTAINERD_CLASS[code].text}`);
      }),
    );
  });

  it('builds the factories on the matching class', () => {
    expect(toGrpcError(notFound('snapshot a'))).toEqual({ code: 5, details: 'snapshot a: not found' });
    expect(toGrpcError(alreadyExists('snapshot a'))).toEqual({
      code: 6,
      details: 'snapshot a: already exists',
    });
    expect(toGrpcError(failedPrecondition('a'))).toEqual({ code: 9, details: 'a: failed precondition' });
    expect(toGrpcError(invalidArgument('a'))).toEqual({ code: 3, details: 'a: invalid argument' });
  });

  it('answers UNKNOWN with the message for any other error, even one wrapping a SnapshotError', () => {
    expect(toGrpcError(new Error('disk full'))).toEqual({ code: 2, details: 'disk full' });
    expect(toGrpcError('plain text')).toEqual({ code: 2, details: 'plain text' });
    const unpack = new UnpackError('SNAPSHOTTER_WRITE_FAILED', 'could not write the layer');
    expect(toGrpcError(unpack)).toEqual({ code: 2, details: 'could not write the layer' });
    const wrapped = new Error('commit failed', { cause: notFound('snapshot a') });
    expect(toGrpcError(wrapped)).toEqual({ code: 2, details: 'commit failed' });
  });

  it('keeps the cause', () => {
    const cause = new Error('ENOSPC');
    expect(new SnapshotError('SNAPSHOTTER_UNAVAILABLE', 'layer x', { cause }).cause).toBe(cause);
  });
});

/** One error of each class, made the way the daemon makes it. */
async function oneOfEach(): Promise<Record<string, unknown>> {
  const caught = async (fn: () => unknown): Promise<unknown> => {
    try {
      await fn();
    } catch (err) {
      return err;
    }
    throw new Error(`${String(fn)} did not throw`);
  };
  const decodeError = new DecodeError('SNAPSHOTTER_DECODE_FAILED', 'invalid block type');
  return {
    SnapshotError: notFound('snapshot a'),
    UnpackError: classify(decodeError),
    DecodeError: decodeError,
    MetadataStoreError: await caught(() => decodeState('{', '/var/lib/x/metadata.json')),
    ContainerdContactError: await caught(() => judgeVersion({ version: '1.5.18', revision: 'r' })),
    FilterSyntaxError: await caught(() => parseFilter('name==')),
    ConfigError: await caught(() => parseConfig('no_such_key = 1')),
    DaemonStartError: await withTempDir(async (dir) => {
      const path = join(dir, 'not-a-socket');
      await writeFile(path, '');
      return caught(() => claimSocket(path));
    }),
  };
}

describe('snapshotter errors', () => {
  it('declares every error class on the SociError base', async () => {
    const srcDir = join(import.meta.dirname, '..', 'src');
    const files = (await readdir(srcDir, { recursive: true })).filter((f) => f.endsWith('.ts'));
    const declared = new Map<string, string>();
    for (const file of files) {
      const text = await readFile(join(srcDir, file), 'utf8');
      for (const m of text.matchAll(/class (\w+) extends (\w+(?:<[^>]*>)?)/g)) {
        if (/Error\b/.test(m[2]!) || m[1]!.endsWith('Error')) declared.set(m[1]!, m[2]!);
      }
    }
    for (const [name, base] of declared) expect(base, name).toMatch(/^SociError</);
    // A new class must be added to oneOfEach, so that the test below covers it.
    expect([...declared.keys()].sort()).toEqual(Object.keys(await oneOfEach()).sort());
  });

  it('are SociErrors with a SNAPSHOTTER_ code and their own name', async () => {
    for (const [name, err] of Object.entries(await oneOfEach())) {
      expect(isSociError(err), name).toBe(true);
      expect(err, name).toBeInstanceOf(SociError);
      expect((err as SociError).code, name).toMatch(/^SNAPSHOTTER_[A-Z_]+$/);
      expect((err as Error).name).toBe(name);
    }
  });

  it('keep their typed details', async () => {
    const errors = await oneOfEach();
    expect(errors.FilterSyntaxError).toMatchObject({ input: 'name==', position: 6 });
    expect(errors.ConfigError).toMatchObject({ code: 'SNAPSHOTTER_CONFIG_INVALID', key: 'no_such_key' });
    expect(errors.UnpackError).toMatchObject({ code: 'SNAPSHOTTER_BAD_LAYER', cause: errors.DecodeError });
  });

  it('name their codes with the package prefix, at compile time too', () => {
    type AnyCode =
      | SnapshotErrorCode
      | UnpackErrorCode
      | MetadataStoreErrorCode
      | ContainerdContactErrorCode
      | ConfigError['code']
      | FilterSyntaxError['code']
      | DaemonStartError['code']
      | DecodeError['code']
      | MetadataStoreError['code']
      | ContainerdContactError['code'];
    // tsc fails here when a code without the prefix joins one of the unions.
    const prefixed: [AnyCode] extends [`SNAPSHOTTER_${string}`] ? true : false = true;
    expect(prefixed).toBe(true);
  });

  it('says why a TOML file cannot be parsed and keeps the parser error', () => {
    const err = (() => {
      try {
        parseConfig('[broken');
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err?.message).toMatch(/^config: TOML syntax error at line 1/);
    expect(err?.cause).toBeInstanceOf(Error);
  });
});

describe('classify (unpack failures)', () => {
  it.each([
    ['ZTOC_UNSUPPORTED_SPARSE', 'SNAPSHOTTER_UNSUPPORTED_ENTRY'],
    ['ZTOC_UNSUPPORTED_ENTRY', 'SNAPSHOTTER_UNSUPPORTED_ENTRY'],
    ['ZTOC_BAD_TAR', 'SNAPSHOTTER_BAD_LAYER'],
    ['ZTOC_TRUNCATED_TAR', 'SNAPSHOTTER_BAD_LAYER'],
  ] as const)("turns the tar walker's %s into %s", (ztocCode, unpackCode) => {
    const cause = new ZtocError(ztocCode, 'entry "a" is odd');
    const err = classify(cause);
    expect(err.code).toBe(unpackCode);
    expect(err.cause).toBe(cause);
    expect(err.message).toContain('entry "a" is odd');
  });

  it('blames the host, not the layer, for anything else', () => {
    const cause = Object.assign(new Error('ENOSPC: no space left on device'), { code: 'ENOSPC' });
    expect(classify(cause)).toMatchObject({ code: 'SNAPSHOTTER_WRITE_FAILED', cause });
  });
});
