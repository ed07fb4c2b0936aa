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
 * Library errors by their stable `code` (`EncryptionError.code`), so reporting an error never needs
 * the library loaded: `--help` and usage errors stay instant.
 */
const LIBRARY_CODES: Record<string, ExitCode> = {
  INVALID_CONFIG: EXIT.CONFIG, // includes MasterKeyMismatchError
  KEY_STORE_UNAVAILABLE: EXIT.UNAVAILABLE,
  KEY_STORE_CORRUPT: EXIT.UNAVAILABLE,
  KEY_STORE_LOCK_TIMEOUT: EXIT.UNAVAILABLE,
  KEY_RING_MISSING: EXIT.UNAVAILABLE,
  INVALID_INPUT: EXIT.USAGE,
  INVALID_KEY_STATE: EXIT.FAILED,
};
const NETWORK_CODES = /^(ECONNREFUSED|ENOTFOUND|ETIMEDOUT|ECONNRESET|EHOSTUNREACH|EAI_AGAIN)$/;

/** The exit code and the `code` reported for any error. */
export function classify(error: unknown): { exitCode: ExitCode; code: string; message: string } {
  const message = error instanceof Error ? error.message : String(error);
  if (error instanceof CliError) return { exitCode: error.exitCode, code: error.code, message };
  const code = (error as { code?: unknown } | undefined)?.code;
  if (typeof code === 'string' && code in LIBRARY_CODES) {
    const exitCode = LIBRARY_CODES[code];
    return { exitCode, code, message: exitCode === EXIT.UNAVAILABLE ? withCause(message, error as Error) : message };
  }
  if (typeof code === 'string' && NETWORK_CODES.test(code)) return { exitCode: EXIT.UNAVAILABLE, code, message };
  return { exitCode: EXIT.FAILED, code: typeof code === 'string' ? code : 'FAILED', message };
}

/** "The key store is unavailable" says little on its own: add the underlying error code (never its message). */
function withCause(message: string, error: Error): string {
  const cause = error.cause as NodeJS.ErrnoException | undefined;
  const code =
    cause?.code ?? (cause instanceof AggregateError ? (cause.errors[0] as NodeJS.ErrnoException)?.code : undefined);
  return code ? `${message} (${code})` : message;
}
