import { usageError } from '../cli.errors.js';
import type { CliIo, CommandDefinition } from '../cli-command.js';

export const deriveCommand: CommandDefinition = {
  name: 'derive',
  summary: 'Derive a key from a passphrase (PBKDF2-HMAC-SHA256) and print it with its salt',
  description: `Derives a key from a passphrase with PBKDF2-HMAC-SHA256 (KeyManagerService.deriveKey) and prints the
key and the salt, both base64. Keep the salt: the same passphrase, salt, iterations and size give the
same key again (pass it back with --salt). A new random salt is made when none is given.

The passphrase is read from the environment variable named by --passphrase-env, or from stdin (a
prompt without echo on a terminal); never from the command line. Needs no key store.`,
  options: {
    'passphrase-env': {
      type: 'string',
      placeholder: 'VAR',
      description: 'read the passphrase from this environment variable',
    },
    salt: {
      type: 'string',
      placeholder: 'base64',
      description: 'derive with this salt (at least 16 bytes) instead of a new one',
    },
    iterations: {
      type: 'string',
      placeholder: 'n',
      description: 'PBKDF2 iterations (default 600000, at least 100000)',
    },
    'key-size': { type: 'string', placeholder: 'bytes', description: 'key length: 32 (default) or 64' },
  },
  usesKeyStore: false,
  examples: [
    'printf \'%s\' "$PASSPHRASE" | nestjs-encryption derive --json',
    'nestjs-encryption derive --passphrase-env BACKUP_PASSPHRASE --salt q83vEjRWeJq83vEjRWeJqw==',
  ],
  async run(context) {
    const { values } = context;
    const { fromBase64, toBase64 } = await import('nestjs-encryption');
    const salt = values.salt === undefined ? undefined : fromBase64(values.salt as string);
    if (values.salt !== undefined && !salt) throw usageError('--salt must be standard base64 (with padding)');
    const iterations = integerOption(values.iterations, '--iterations');
    const keySize = integerOption(values['key-size'], '--key-size');
    if (iterations !== undefined && iterations < 100_000) throw usageError('--iterations must be at least 100000');
    if (keySize !== undefined && keySize !== 32 && keySize !== 64) throw usageError('--key-size must be 32 or 64');
    const variable = values['passphrase-env'] as string | undefined;
    let passphrase: string;
    if (variable !== undefined) {
      const value = context.io.env[variable];
      if (value === undefined) throw usageError(`Environment variable ${variable} is not set`);
      passphrase = value;
    } else {
      passphrase = await readPassphrase(context.io);
    }
    return context.withServices(
      async ({ keys }) => {
        const derived = await keys.deriveKey(passphrase, salt);
        const result = {
          algorithm: 'PBKDF2-HMAC-SHA256',
          iterations: iterations ?? 600_000,
          keySize: derived.key.length,
          key: toBase64(derived.key),
          salt: toBase64(derived.salt),
        };
        derived.key.fill(0);
        if (context.json) {
          context.printJson(result);
        } else {
          context.print(
            `key   ${result.key}\nsalt  ${result.salt}\n` +
              context.style.dim(
                `(${result.algorithm}, ${result.iterations} iterations, ${result.keySize} bytes; keep the salt to derive the same key again)`,
              ) +
              '\n',
          );
        }
        return 0;
      },
      { standalone: true, options: { ...(iterations ? { iterations } : {}), ...(keySize ? { keySize } : {}) } },
    );
  },
};

function integerOption(value: string | boolean | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'string' || !/^\d+$/.test(value)) throw usageError(`${name} must be a whole number`);
  return Number(value);
}

/** All of stdin without its final newline, or a prompt without echo on a terminal. */
async function readPassphrase(io: CliIo): Promise<string> {
  const { stdin } = io;
  if (stdin.isTTY && stdin.setRawMode) {
    io.stderr.write('Passphrase: ');
    stdin.setRawMode(true);
    stdin.resume();
    try {
      return await new Promise<string>((resolve, reject) => {
        let typed = '';
        const onData = (chunk: Buffer | string) => {
          for (const char of chunk.toString('utf8')) {
            if (char === '\r' || char === '\n') {
              stdin.off('data', onData);
              io.stderr.write('\n');
              return resolve(typed);
            }
            if (char === '\u0003') {
              stdin.off('data', onData);
              return reject(usageError('Cancelled'));
            }
            typed = char === '\u007f' ? typed.slice(0, -1) : typed + char;
          }
        };
        stdin.on('data', onData);
      });
    } finally {
      stdin.setRawMode(false);
      stdin.pause();
    }
  }
  const chunks: Buffer[] = [];
  for await (const chunk of stdin) chunks.push(Buffer.isBuffer(chunk) ? chunk : Buffer.from(chunk));
  return Buffer.concat(chunks)
    .toString('utf8')
    .replace(/\r?\n$/, '');
}
