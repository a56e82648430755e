export {
  causeChain,
  codesOf,
  findCause,
  findCode,
  hasCode,
  isUnreachable,
  systemCodeOf,
} from './cause-chain.js';
export { isSociError, SociError, type SociErrorOptions } from './soci-error.js';
