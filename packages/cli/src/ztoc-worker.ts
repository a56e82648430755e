// Entry of the zTOC worker threads (see workers.ts); built next to bin.js.
import { runZtocWorker } from '@soci-ts/soci-index';

runZtocWorker();
