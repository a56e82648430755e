// The first time containerd calls us, we ask it which release it is (its Version API on
// containerd_address) and say so in the log: a user reading the log of a misbehaving node sees at
// once whether their containerd is one we test with. The answer never gates a call: a containerd
// that does not answer or is too old gets one log line with a typed error, and the daemon goes on
// serving every call as before.
import { ContainerdClient } from '@soci-ts/containerd-client';
import { SociError } from '@soci-ts/errors';
import type { Logger } from 'pino';

/** The containerd release lines the e2e suite runs against (scripts/install-containerd and Debian's). */
export const TESTED_CONTAINERD_LINES = ['1.6', '1.7', '2.2'] as const;
/**
 * The oldest line that works: 1.6 is the first whose CRI sends every label remote snapshots need
 * (cri.manifest-digest, cri.image-layers) and that supports hosts.toml; older ones are refused
 * by neither side, but lazy pulls silently fall back to full ones.
 */
export const MIN_CONTAINERD = { major: 1, minor: 6 } as const;

export type ContainerdContactErrorCode =
  | 'SNAPSHOTTER_CONTAINERD_UNREACHABLE'
  | 'SNAPSHOTTER_CONTAINERD_TOO_OLD';

/** containerd could not be asked for its version, or is older than soci-ts supports. */
export class ContainerdContactError extends SociError<ContainerdContactErrorCode> {
  override readonly name = 'ContainerdContactError';
}

export interface ContainerdVersion {
  version: string;
  revision: string;
  major: number;
  minor: number;
  /** Whether its major.minor is one of TESTED_CONTAINERD_LINES. */
  tested: boolean;
}

/** Reads "v2.2.9", "1.6.20~ds1" or "2.2.0+unknown" into numbers; undefined when it is none of those. */
export function parseReleaseLine(version: string): { major: number; minor: number } | undefined {
  const m = /^v?(\d+)\.(\d+)(?:\.|$)/.exec(version);
  return m ? { major: Number(m[1]), minor: Number(m[2]) } : undefined;
}

/** What a Version answer means for us: its line, whether we test it, or a too-old error. */
export function judgeVersion(answer: { version: string; revision: string }): ContainerdVersion {
  const line = parseReleaseLine(answer.version);
  if (!line) {
    return { ...answer, major: 0, minor: 0, tested: false };
  }
  const tested = (TESTED_CONTAINERD_LINES as readonly string[]).includes(`${line.major}.${line.minor}`);
  const tooOld =
    line.major < MIN_CONTAINERD.major ||
    (line.major === MIN_CONTAINERD.major && line.minor < MIN_CONTAINERD.minor);
  if (tooOld) {
    throw new ContainerdContactError(
      'SNAPSHOTTER_CONTAINERD_TOO_OLD',
      `containerd ${answer.version} is older than ${MIN_CONTAINERD.major}.${MIN_CONTAINERD.minor}: its pulls do not pass ` +
        'the image labels lazy loading needs, so images are pulled in full; upgrade containerd',
    );
  }
  return { ...answer, ...line, tested };
}

export interface ContainerdContactOptions {
  /** containerd's gRPC socket (config `containerd_address`). */
  address: string;
  logger: Logger;
  /** How long the Version call may take. Default 5 s. */
  timeoutMs?: number;
  /** Called once with the answer (for the containerd_info metric). */
  onVersion?: (v: ContainerdVersion) => void;
  /** Asks containerd for its version; default: the Version API at `address`. For tests. */
  askVersion?: (address: string) => Promise<{ version: string; revision: string }>;
}

/**
 * Asks containerd's Version API; `done` closes the connection, also while the call hangs (an open
 * channel to a silent containerd would keep the daemon's process from exiting).
 */
function askVersionOverGrpc(address: string): {
  answer: Promise<{ version: string; revision: string }>;
  done(): void;
} {
  const client = new ContainerdClient({ address, namespace: 'default' });
  return { answer: client.version(), done: () => client.close() };
}

/**
 * Asks containerd for its version once, on the first call it makes to us; `first()` is cheap to
 * call on every request. `checked` settles with the verdict (never rejects).
 */
export class ContainerdContact {
  private started: Promise<ContainerdVersion | ContainerdContactError> | undefined;

  constructor(private readonly options: ContainerdContactOptions) {}

  /** Call on every incoming request: the first one starts the version check in the background. */
  first(): void {
    this.started ??= this.check();
  }

  /** The verdict of the check, once `first()` ran; undefined before. */
  get checked(): Promise<ContainerdVersion | ContainerdContactError> | undefined {
    return this.started;
  }

  private async check(): Promise<ContainerdVersion | ContainerdContactError> {
    const { address, logger } = this.options;
    const timeoutMs = this.options.timeoutMs ?? 5_000;
    let asked: { answer: Promise<{ version: string; revision: string }>; done(): void } | undefined;
    let timer: NodeJS.Timeout | undefined;
    try {
      asked = this.options.askVersion
        ? { answer: this.options.askVersion(address), done: () => {} }
        : askVersionOverGrpc(address);
      const answer = await Promise.race([
        asked.answer,
        new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
          timer.unref();
        }),
      ]).catch((cause: unknown) => {
        throw new ContainerdContactError(
          'SNAPSHOTTER_CONTAINERD_UNREACHABLE',
          `containerd did not tell its version at ${address} (${cause instanceof Error ? cause.message : String(cause)}); ` +
            'set containerd_address to the socket of the containerd that uses this snapshotter. Snapshots are served anyway.',
          { cause },
        );
      });
      const version = judgeVersion(answer);
      this.options.onVersion?.(version);
      if (version.tested) {
        logger.info(
          { containerdVersion: version.version, revision: version.revision, address },
          'containerd contacted',
        );
      } else {
        logger.warn(
          {
            containerdVersion: version.version,
            revision: version.revision,
            address,
            tested: TESTED_CONTAINERD_LINES,
          },
          `containerd ${version.version} has not been tested with soci-ts (tested: ${TESTED_CONTAINERD_LINES.join(', ')}); ` +
            'lazy pulls may fall back to full ones: report problems with this version',
        );
      }
      return version;
    } catch (err) {
      const error =
        err instanceof ContainerdContactError
          ? err
          : new ContainerdContactError('SNAPSHOTTER_CONTAINERD_UNREACHABLE', String(err), { cause: err });
      logger.warn({ code: error.code, address }, error.message);
      return error;
    } finally {
      clearTimeout(timer);
      asked?.done();
    }
  }
}
