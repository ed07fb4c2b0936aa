import {
  EncryptionConfigError,
  EncryptionError,
  EncryptionInputError,
  KeyStateError,
  KeyStoreCorruptError,
  KeyStoreLockTimeoutError,
  KeyStoreUnavailableError,
} from 'nestjs-encryption';

/** What the process exit status means; scripts branch on these, so they never change. */
export const EXIT = {
  OK: 0,
  /** Bad command line: unknown command or option, missing or invalid argument. */
  USAGE: 1,
  /** The operation ran and failed or was refused (values that failed to re-encrypt, a destroy refused). */
  FAILED: 2,
  /** Configuration: missing or wrong master key, bad environment variable, invalid option. */
  CONFIG: 3,
  /** The key store (or the data source) can't be reached, can't be read, or holds no key ring. */
  UNAVAILABLE: 4,
  /** A named thing doesn't exist: key id, input file, table or column. */
  NOT_FOUND: 5,
} as const;

export type ExitCode = (typeof EXIT)[keyof typeof EXIT];

export const EXIT_CODES_HELP = `Exit codes:
  0  success
  1  usage error (unknown command or option, missing or invalid argument)
  2  operation failed or refused (e.g. values that failed to re-encrypt, destroy refused)
  3  configuration error (missing or wrong master key, bad environment variable)
  4  key store or data source unavailable, unreadable or empty
  5  not found (unknown key id, missing input file, table or column)`;

/** An error the CLI reports with its own exit code and a stable `code` for `--json`. */
export class CliError extends Error {
  constructor(
    readonly exitCode: ExitCode,
    readonly code: string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
    this.name = 'CliError';
  }
}

export const usageError = (message: string) => new CliError(EXIT.USAGE, 'USAGE', message);
export const notFound = (message: string) => new CliError(EXIT.NOT_FOUND, 'NOT_FOUND', message);
export const configError = (message: string) => new CliError(EXIT.CONFIG, 'INVALID_CONFIG', message);

/**
 * The key store holds no ring. The library would create one at boot; the CLI refuses, so a wrong
 * `KEY_STORE_PATH` or `DATABASE_URL` is reported instead of silently starting a new, empty ring.
 * An `EncryptionError`, so `KeyManagerService` passes it through unchanged.
 */
export class KeyRingMissingError extends EncryptionError {
  constructor(location: string) {
    super(
      'KEY_RING_MISSING',
      `The key store (${location}) holds no key ring: check KEY_STORE and its location. ` +
        'The application creates the ring when it first starts.',
    );
  }
}

/** The exit code and the `code` reported for any error. */
export function classify(error: unknown): { exitCode: ExitCode; code: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof CliError) return { exitCode: error.exitCode, code: error.code, message };
  if (error instanceof EncryptionError) {
    const { code } = error;
    if (error instanceof EncryptionConfigError) return { exitCode: EXIT.CONFIG, code, message }; // includes MasterKeyMismatchError
    if (
      error instanceof KeyStoreUnavailableError ||
      error instanceof KeyStoreCorruptError ||
      error instanceof KeyStoreLockTimeoutError ||
      error instanceof KeyRingMissingError
    ) {
      return { exitCode: EXIT.UNAVAILABLE, code, message: withCause(message, error) };
    }
    if (error instanceof EncryptionInputError) return { exitCode: EXIT.USAGE, code, message };
    if (error instanceof KeyStateError) return { exitCode: EXIT.FAILED, code, message };
    return { exitCode: EXIT.FAILED, code, message };
  }
  const errno = (error as NodeJS.ErrnoException | undefined)?.code;
  if (typeof errno === 'string' && /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|EAI_AGAIN)$/.test(errno)) {
    return { exitCode: EXIT.UNAVAILABLE, code: errno, message };
  }
  return { exitCode: EXIT.FAILED, code: 'FAILED', message };
}

/** "The key store is unavailable" says little on its own: add the underlying error code (never its message). */
function withCause(message: string, error: Error): string {
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  const code = cause?.code ?? (cause instanceof AggregateError ? (cause.errors[0] as NodeJS.ErrnoException)?.code : undefined);
  return code ? `${message} (${code})` : message;
}
