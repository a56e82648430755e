// Entry of the layer unpack worker threads (see unpack/extraction-thread.ts); built next to index.js.
import { runExtractionWorker } from './unpack/extraction-thread.js';

runExtractionWorker();
