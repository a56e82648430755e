export { CliError, describeError } from './errors.js';
export { type BufferIo, bufferIo, type Io, processIo } from './io.js';
export { buildProgram, main, VERSION } from './main.js';
