import { readFile } from 'node:fs/promises';

import { notFound, usageError } from '../cli.errors.js';
import type { CommandDefinition } from '../cli-command.js';

export const masterRewrapCommand: CommandDefinition = {
  name: 'master rewrap',
  summary: 'Re-wrap every stored key under a new master key',
  description: `Re-wraps every data key and key pair in the store under a new master key in one
compare-and-set write: a crash leaves the old or the new wrapping, never neither. Ciphertexts are
untouched. The current master key comes from MASTER_KEY / MASTER_KEY_PASSPHRASE as usual; the new
one from (exactly one of)
  NEW_MASTER_KEY              32 bytes, base64
  NEW_MASTER_KEY_PASSPHRASE   a passphrase (at least 12 characters)
  --new-master-key-file       a file holding the base64 key
Never on the command line, where other users could see it. Afterwards restart every instance with
the new master key: the old one no longer opens the store.`,
  options: {
    'new-master-key-file': {
      type: 'string',
      placeholder: 'path',
      description: 'read the new master key (base64) from this file',
    },
  },
  usesKeyStore: true,
  examples: ['NEW_MASTER_KEY="$(openssl rand -base64 32)" nestjs-encryption master rewrap'],
  async run(context) {
    const { env } = context.io;
    const file = context.values['new-master-key-file'] as string | undefined;
    const sources = [env.NEW_MASTER_KEY, env.NEW_MASTER_KEY_PASSPHRASE, file].filter((value) => value);
    if (sources.length !== 1) {
      throw usageError(
        'Give the new master key in exactly one of NEW_MASTER_KEY, NEW_MASTER_KEY_PASSPHRASE or --new-master-key-file',
      );
    }
    let next: string | { passphrase: string };
    if (file) {
      try {
        next = (await readFile(file, 'utf8')).trim();
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code === 'ENOENT') throw notFound(`No file ${file}`);
        throw error;
      }
    } else if (env.NEW_MASTER_KEY) {
      next = env.NEW_MASTER_KEY;
    } else {
      const passphrase = env.NEW_MASTER_KEY_PASSPHRASE!;
      if (passphrase.length < 12) throw usageError('NEW_MASTER_KEY_PASSPHRASE must be at least 12 characters');
      next = { passphrase };
    }
    return context.withServices(async ({ keys, location }) => {
      await keys.rewrapMasterKey(next);
      const wrapped = keys.listKeys().filter((key) => key.state !== 'destroyed').length;
      const keyPairs = keys.listKeyPairs().length;
      if (context.json) {
        context.printJson({
          rewrapped: wrapped,
          keyPairs,
          revision: keys.revision,
          masterKey: typeof next === 'string' ? 'key' : 'passphrase',
        });
      } else {
        context.print(
          `Re-wrapped ${wrapped} key${wrapped === 1 ? '' : 's'} and ${keyPairs} key pair${keyPairs === 1 ? '' : 's'} in ${location} ` +
            `under the new master key (revision ${keys.revision}).\n` +
            'Restart every instance with the new master key: the old one no longer opens the store.\n',
        );
      }
      return 0;
    });
  },
};
