/** Where the CLI writes; tests pass buffers, bin.ts passes the process streams. */
export interface Io {
  /** Command output (text, or raw file bytes for get-file and cat). */
  out(data: string | Uint8Array): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress is drawn only then). */
  isTTY: boolean;
  /** All of standard input, as text (--password-stdin). */
  readStdin(): Promise<string>;
}

export function processIo(): Io {
  return {
    out: (data) => process.stdout.write(data),
    err: (text) => process.stderr.write(text),
    isTTY: Boolean(process.stderr.isTTY),
    readStdin: async () => {
      const chunks: Buffer[] = [];
      for await (const chunk of process.stdin) chunks.push(chunk as Buffer);
      return Buffer.concat(chunks).toString('utf8');
    },
  };
}

/** An Io that keeps everything, for tests and embedding. */
export interface BufferIo extends Io {
  readonly stdoutBytes: Buffer;
  readonly stdout: string;
  readonly stderr: string;
}

export function bufferIo(options: { isTTY?: boolean; stdin?: string } = {}): BufferIo {
  const out: Buffer[] = [];
  let stderr = '';
  return {
    isTTY: options.isTTY ?? false,
    readStdin: async () => options.stdin ?? '',
    out: (data) => out.push(Buffer.from(data)),
    err: (text) => {
      stderr += text;
    },
    get stdoutBytes() {
      return Buffer.concat(out);
    },
    get stdout() {
      return Buffer.concat(out).toString('utf8');
    },
    get stderr() {
      return stderr;
    },
  };
}
