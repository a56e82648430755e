#!/usr/bin/env node
import { parseArgs } from 'node:util';
import { isSociError } from '@soci-ts/errors';
import {
  defaultConfig,
  formatConfig,
  loadConfigFile,
  redactConfig,
  type SnapshotterConfig,
} from './config.js';
import { ConfigError } from './config-error.js';
import { installCrashGuard } from './crash-guard.js';
import { createLogger, startSnapshotter } from './daemon.js';
import { registryFromConfig } from './soci/registry-from-config.js';
import { SociRemoteSource } from './soci/soci-source.js';

const USAGE = `usage: soci-snapshotter [--config FILE] [--print-config]

  --config FILE    TOML configuration (default: built-in defaults)
  --print-config   print the effective configuration as TOML (passwords redacted) and exit
  --help           show this text
`;

async function main(): Promise<number> {
  let args: ReturnType<
    typeof parseArgs<{
      options: { config: { type: 'string' }; 'print-config': { type: 'boolean' }; help: { type: 'boolean' } };
    }>
  >;
  try {
    args = parseArgs({
      options: { config: { type: 'string' }, 'print-config': { type: 'boolean' }, help: { type: 'boolean' } },
    });
  } catch (err) {
    process.stderr.write(`soci-snapshotter: ${(err as Error).message}\n${USAGE}`);
    return 2;
  }
  if (args.values.help) {
    process.stdout.write(USAGE);
    return 0;
  }
  let config: SnapshotterConfig;
  try {
    config = args.values.config ? await loadConfigFile(args.values.config) : defaultConfig();
  } catch (err) {
    if (err instanceof ConfigError) {
      process.stderr.write(`soci-snapshotter: ${err.message}\n`);
      return 2;
    }
    throw err;
  }
  if (args.values['print-config']) {
    process.stdout.write(formatConfig(redactConfig(config)));
    return 0;
  }

  const logger = createLogger(config.logLevel);
  installCrashGuard(logger);
  const daemon = await startSnapshotter(config, {
    logger,
    remote: ({ logger, metrics }) =>
      new SociRemoteSource({ config, registryClient: registryFromConfig(config), logger, metrics }),
  });
  await new Promise<void>((resolve) => {
    const stop = (signal: NodeJS.Signals) => {
      daemon.logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await daemon.close();
  return 0;
}

main().then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    // soci-ts errors say what to do and Node's system errors (EACCES, EADDRINUSE ...) what failed:
    // their message is enough. Anything else gets its stack for a bug report.
    const known =
      isSociError(err) || (err instanceof Error && typeof (err as NodeJS.ErrnoException).code === 'string');
    process.stderr.write(
      `soci-snapshotter: ${known ? (err as Error).message : ((err as Error)?.stack ?? String(err))}\n`,
    );
    process.exitCode = 1;
  },
);
