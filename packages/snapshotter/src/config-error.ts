import { SociError, type SociErrorOptions } from '@soci-ts/errors';

/** A configuration value is wrong; `key` is its dotted TOML path ('' for the file as a whole). */
export class ConfigError extends SociError<'SNAPSHOTTER_CONFIG_INVALID'> {
  override readonly name = 'ConfigError';
  readonly key: string;
  constructor(
    code: 'SNAPSHOTTER_CONFIG_INVALID',
    message: string,
    options: SociErrorOptions & { key?: string } = {},
  ) {
    super(code, message, options);
    this.key = options.key ?? '';
  }
}

/** The error for a wrong value at `key`, worded `config: <key>: <problem>` so the user finds the line. */
export function configError(key: string, problem: string, options: SociErrorOptions = {}): ConfigError {
  const message = key === '' ? `config: ${problem}` : `config: ${key}: ${problem}`;
  return new ConfigError('SNAPSHOTTER_CONFIG_INVALID', message, { ...options, key });
}
