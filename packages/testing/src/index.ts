// Test support shared by every soci-ts package: real registries on loopback, images made by real tools,
// and HTTP fronts for auth and fault injection. See README.md.

export { noiseBytes, seededRandom } from './bytes.js';
export {
  type Fault,
  type FaultProxy,
  startFaultProxy,
  startTokenAuthProxy,
  type TokenAuthProxy,
} from './http-proxy.js';
export {
  type BuiltImage,
  buildImage,
  pushImage,
  pushLayout,
  skopeo,
  type TestLayer,
  type ToolCredentials,
} from './images.js';
export { freePort, type RunResult, run, stopChild, waitUntil } from './process.js';
export {
  type RegistryProcess,
  type StartRegistryOptions,
  startReferrersRegistry,
  startRegistry,
  type TestRegistry,
} from './registry.js';
