import { createServer, type IncomingMessage, request, type ServerResponse } from 'node:http';
import { type Fault, type FaultProxy, listen } from '@soci-ts/testing/http-proxy';

/**
 * What happens to one blob GET. The first four damage the bytes here (the shared fault proxy of
 * @soci-ts/testing has no kind that changes body bytes); the rest are handed to that proxy.
 */
export type BlobFault =
  /** A byte flipped every 8 KiB (so every span is hit), status and headers intact: only span digests can tell. */
  | 'corrupt'
  /** Headers promise the whole range; half the body comes, then the connection is cut. */
  | 'truncate'
  /** A well-formed 206 for the first half, claiming the blob ends there. */
  | 'short'
  /** The bytes one position further on, labelled as the range asked for. */
  | 'shifted'
  | 'status-500'
  | 'status-503'
  | 'reset'
  | 'stall-headers'
  | 'stall-body'
  /** 200 with the whole blob instead of 206: slower, never wrong, never a failure. */
  | 'ignore-range';

export const DAMAGING_FAULTS = [
  'corrupt',
  'truncate',
  'short',
  'shifted',
  'status-500',
  'status-503',
  'reset',
] as const satisfies readonly BlobFault[];
export const STALL_FAULTS = ['stall-headers', 'stall-body'] as const satisfies readonly BlobFault[];

const DELEGATED: Partial<Record<BlobFault, Fault>> = {
  'status-500': { kind: 'status', status: 500 },
  'status-503': { kind: 'status', status: 503 },
  reset: { kind: 'reset' },
  'stall-headers': { kind: 'stall-headers' },
  'stall-body': { kind: 'stall-body', afterBytes: 1000 },
  'ignore-range': { kind: 'ignore-range' },
};

export interface BlobFaultFront {
  host: string;
  url: string;
  /** Every blob GET gets this fault while it is set. */
  always: BlobFault | undefined;
  /** Otherwise the next blob GETs take these in order (`undefined` = no fault). */
  queue: (BlobFault | undefined)[];
  /** Faults applied so far, by kind (a test proves with it that its faults really happened). */
  applied: Map<BlobFault, number>;
  /** Blob GETs seen. */
  blobGets: number;
  clear(): void;
  stop(): Promise<void>;
}

/**
 * A proxy in front of a @soci-ts/testing fault proxy (itself in front of a real registry) that
 * decides per blob GET which fault it gets: byte damage is done here, protocol faults are
 * injected into the fault proxy for exactly that request (tagged by a query parameter, which the
 * registry ignores).
 */
export async function startBlobFaultFront(behind: FaultProxy): Promise<BlobFaultFront> {
  let tag = 0;
  const state: Omit<BlobFaultFront, 'host' | 'url' | 'stop'> = {
    always: undefined,
    queue: [],
    applied: new Map(),
    blobGets: 0,
    clear() {
      state.always = undefined;
      state.queue = [];
    },
  };
  const target = new URL(behind.url);

  const server = createServer((req, res) => {
    let path = req.url ?? '/';
    const isBlobGet = req.method === 'GET' && /\/blobs\/sha256:/.test(path);
    const fault = isBlobGet ? (state.always ?? state.queue.shift()) : undefined;
    if (isBlobGet) state.blobGets++;
    if (fault) state.applied.set(fault, (state.applied.get(fault) ?? 0) + 1);
    const headers = { ...req.headers };
    const delegated = fault && DELEGATED[fault];
    if (delegated) {
      const marker = `soci-fault=${++tag}`;
      path += `${path.includes('?') ? '&' : '?'}${marker}`;
      behind.inject({ ...delegated, match: (_method, p) => p.endsWith(marker) });
    }
    const asked = parseRange(headers.range);
    if (fault === 'shifted' && asked) headers.range = `bytes=${asked.first + 1}-${asked.last + 1}`;
    const up = request(
      { host: target.hostname, port: target.port, method: req.method, path, headers },
      (upRes) => respond(upRes, res, delegated ? undefined : fault, asked),
    );
    up.on('error', () => res.destroy());
    req.pipe(up);
  });
  return Object.assign(state, await listen(server));
}

function parseRange(value: string | undefined): { first: number; last: number } | undefined {
  const m = /^bytes=(\d+)-(\d+)$/.exec(value ?? '');
  return m ? { first: Number(m[1]), last: Number(m[2]) } : undefined;
}

/** Sends the upstream answer on, damaged as `fault` says. */
function respond(
  upRes: IncomingMessage,
  res: ServerResponse,
  fault: BlobFault | undefined,
  asked: { first: number; last: number } | undefined,
): void {
  const status = upRes.statusCode ?? 502;
  if (!fault || status >= 300) {
    res.writeHead(status, upRes.headers);
    upRes.pipe(res);
    return;
  }
  const chunks: Buffer[] = [];
  upRes.on('data', (chunk: Buffer) => chunks.push(chunk));
  upRes.on('end', () => {
    const body = Buffer.concat(chunks);
    const headers = { ...upRes.headers };
    const half = body.subarray(0, Math.max(1, body.length >> 1));
    switch (fault) {
      case 'corrupt': {
        for (let at = body.length >> 1; at < body.length; at += 8192) body[at] = body[at]! ^ 0x5a;
        for (let at = (body.length >> 1) - 8192; at >= 0; at -= 8192) body[at] = body[at]! ^ 0x5a;
        res.writeHead(status, headers);
        res.end(body);
        return;
      }
      case 'truncate':
        res.writeHead(status, headers);
        res.write(half, () => res.socket?.destroy());
        return;
      case 'short': {
        const first = asked?.first ?? 0;
        headers['content-length'] = String(half.length);
        headers['content-range'] = `bytes ${first}-${first + half.length - 1}/${first + half.length}`;
        res.writeHead(206, headers);
        res.end(half);
        return;
      }
      case 'shifted': {
        const total = /\/(\d+)$/.exec(String(headers['content-range'] ?? ''))?.[1] ?? '*';
        if (asked)
          headers['content-range'] = `bytes ${asked.first}-${asked.first + body.length - 1}/${total}`;
        res.writeHead(status, headers);
        res.end(body);
        return;
      }
      default:
        res.writeHead(status, headers);
        res.end(body);
    }
  });
}
