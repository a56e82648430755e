// Node's native zlib driven through its synchronous handle, one inflate() call per write, so the
// flush mode Z_BLOCK makes it stop at every deflate block boundary (as zlib's zran.c relies on).
// The public zlib API loops internally and hides those stops. The handle is Node-internal but has been
// stable since Node 10; if it is missing, the builder falls back to the pure JS inflater.

interface ZlibHandle {
  writeSync(
    flush: number,
    input: Uint8Array,
    inOff: number,
    inLen: number,
    output: Uint8Array,
    outOff: number,
    outLen: number,
  ): void;
  close(): void;
  onerror: (message: string, errno: number, code?: string) => void;
}

interface NodeZlibInternals {
  InflateRaw: new () => { _handle?: ZlibHandle; _writeState?: Uint32Array };
  constants: { Z_BLOCK: number };
}

export interface NativeInflateResult {
  consumed: number;
  produced: number;
}

export class NativeRawInflater {
  private error: string | null = null;

  private constructor(
    private readonly handle: ZlibHandle,
    private readonly state: Uint32Array,
    private readonly zBlock: number,
  ) {
    handle.onerror = (message) => {
      this.error = message;
    };
  }

  /** A native raw inflater, or null when not running in a Node that has the expected internals. */
  static create(): NativeRawInflater | null {
    const proc = (globalThis as { process?: { getBuiltinModule?: (id: string) => unknown } }).process;
    let zlib: NodeZlibInternals | undefined;
    try {
      zlib = proc?.getBuiltinModule?.('node:zlib') as NodeZlibInternals | undefined;
    } catch {
      return null;
    }
    if (!zlib || typeof zlib.InflateRaw !== 'function') return null;
    const engine = new zlib.InflateRaw();
    const handle = engine._handle;
    const state = engine._writeState;
    if (!handle || typeof handle.writeSync !== 'function' || !(state instanceof Uint32Array)) return null;
    return new NativeRawInflater(handle, state, zlib.constants.Z_BLOCK);
  }

  /** One inflate(Z_BLOCK) call. Throws the zlib message on invalid data. */
  write(input: Uint8Array, inOff: number, output: Uint8Array, outOff: number): NativeInflateResult {
    const inLen = input.length - inOff;
    const outLen = output.length - outOff;
    this.handle.writeSync(this.zBlock, input, inOff, inLen, output, outOff, outLen);
    if (this.error !== null) throw new Error(this.error);
    return { produced: outLen - this.state[0]!, consumed: inLen - this.state[1]! };
  }

  close(): void {
    try {
      this.handle.close();
    } catch {
      // already closed
    }
  }
}
