import { DOCKER_HUB } from './reference.js';

/** How to reach one registry host. */
export interface HostOptions {
  /** Talk plain HTTP instead of HTTPS. Default: true for loopback hosts (localhost, 127.x, [::1]), else false. */
  plainHttp?: boolean;
  /** Accept any TLS certificate (self-signed test registries). Never the default. */
  insecureSkipVerify?: boolean;
  /** Extra trusted CA certificate(s), PEM. */
  ca?: string | Buffer | (string | Buffer)[];
  /** Override where the API lives, e.g. `https://mirror.example:5000`. Docker Hub defaults to registry-1.docker.io. */
  endpoint?: string;
}

/** Per-host options, keyed by registry host as written in references (`ghcr.io`, `127.0.0.1:5000`). */
export type HostsConfig = Record<string, HostOptions>;

const LOOPBACK = /^(localhost|127\.\d+\.\d+\.\d+|\[::1\])(:\d+)?$/;

/**
 * The origin (`scheme://host[:port]`) of a registry's API, normalized as `URL.origin` is (lower case, no
 * default port) so that it compares equal to the origin of any URL on that registry.
 */
export function registryOrigin(registry: string, options: HostOptions = {}): string {
  if (options.endpoint) return new URL(options.endpoint).origin;
  const host = registry === DOCKER_HUB ? 'registry-1.docker.io' : registry;
  const plain = options.plainHttp ?? LOOPBACK.test(registry);
  return new URL(`${plain ? 'http' : 'https'}://${host}`).origin;
}

/** Finds the options of the registry whose API origin is `origin` (for TLS settings of connections). */
export function hostOptionsForOrigin(hosts: HostsConfig, origin: string): HostOptions | undefined {
  for (const [registry, options] of Object.entries(hosts)) {
    if (registryOrigin(registry, options) === origin) return options;
  }
  return undefined;
}
