export { causeChain, codesOf, findCause, findCode, hasCode, systemCodeOf } from './cause-chain.js';
export { isSociError, SociError, type SociErrorOptions } from './soci-error.js';
