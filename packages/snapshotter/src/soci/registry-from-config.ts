import {
  chainCredentials,
  dockerConfigCredentials,
  type HostsConfig,
  RegistryClient,
  staticCredentials,
} from '@soci-ts/oci-referrers';
import type { SnapshotterConfig } from '../config.js';

/**
 * The daemon's registry client: per-host options and credentials from the config file first,
 * then the docker config.json of the daemon's user (credential helpers included).
 */
export function registryFromConfig(config: SnapshotterConfig): RegistryClient {
  const hosts: HostsConfig = {};
  const credentials: Record<string, { username?: string; password?: string }> = {};
  for (const [host, h] of Object.entries(config.registry.hosts)) {
    hosts[host] = {
      plainHttp: h.plainHttp || undefined,
      insecureSkipVerify: h.skipVerify,
      ...(h.endpoints[0] ? { endpoint: h.endpoints[0] } : {}),
    };
    if (h.username !== undefined) credentials[host] = { username: h.username, password: h.password };
  }
  return new RegistryClient({
    hosts,
    credentials: chainCredentials(staticCredentials(credentials), dockerConfigCredentials()),
  });
}
