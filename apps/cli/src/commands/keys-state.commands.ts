import { CliError, EXIT } from '../cli.errors.js';
import type { CommandContext, CommandDefinition } from '../cli-command.js';
import { dataUsageOf, ScanLedger } from '../state/scan-ledger.js';
import { findKey, keyJson, keyLine } from './key-view.js';

const ID_ARG = [{ name: '<id>', description: 'key id, as `keys list` shows it' }];

export const keysRetireCommand: CommandDefinition = {
  name: 'keys retire',
  summary: 'Retire a previous key: it stays stored but refuses to decrypt',
  args: ID_ARG,
  description: `Retires a decrypt-only key: its bytes stay in the store (wrapped), but ciphertexts made with it no
longer decrypt until it is restored (\`keys restore\`). Check \`keys list\` first: the DATA column shows
whether scanned data still uses the key. The active key can't be retired; rotate first.`,
  usesKeyStore: true,
  examples: ['nestjs-encryption keys retire k2-5f0c9a1e3b7d2468'],
  run: (context) => changeState(context, 'retire'),
};

export const keysRestoreCommand: CommandDefinition = {
  name: 'keys restore',
  summary: 'Let a retired key decrypt again',
  args: ID_ARG,
  description:
    'Makes a retired key decrypt-only again, so ciphertexts made with it decrypt. A destroyed key is gone for good.',
  usesKeyStore: true,
  examples: ['nestjs-encryption keys restore k2-5f0c9a1e3b7d2468'],
  run: (context) => changeState(context, 'restore'),
};

export const keysDestroyCommand: CommandDefinition = {
  name: 'keys destroy',
  summary: 'Erase a previous key for good (refuses while scanned data still needs it)',
  args: ID_ARG,
  options: {
    force: {
      type: 'boolean',
      description: 'destroy even though a scan found values using the key, or no scan covers it',
    },
  },
  description: `Erases a decrypt-only or retired key's bytes from the store; its metadata stays for the audit trail.
Ciphertexts made with it can never be decrypted again.

Refused (exit 2) unless every source \`reencrypt\` has scanned was scanned after the key stopped
encrypting and none of them still uses it. Without any scan there is nothing to go on, so that is
refused too. --force skips this check; the CLI can only know the sources it has scanned.`,
  usesKeyStore: true,
  examples: [
    'nestjs-encryption keys destroy k1-0a1b2c3d4e5f6789',
    'nestjs-encryption keys destroy k1-0a1b2c3d4e5f6789 --force --json',
  ],
  async run(context) {
    const scans = await new ScanLedger(context.stateDir).all();
    return context.withServices(async ({ keys, location }) => {
      const id = context.positionals[0];
      const key = findKey(keys.listKeys(), id, location);
      const data = dataUsageOf(key, scans);
      const force = context.values.force === true;
      if (data.status !== 'unused' && !force) {
        throw new CliError(
          EXIT.FAILED,
          'KEY_STILL_NEEDED',
          data.status === 'in-use'
            ? `Refusing to destroy ${id}: ${data.summary}. Re-encrypt those values first (nestjs-encryption reencrypt), or use --force`
            : `Refusing to destroy ${id}: ${data.summary}, so nothing shows that no data needs it. ` +
                'Scan every source with nestjs-encryption reencrypt (or --dry-run), or use --force',
        );
      }
      const destroyed = await keys.destroyKey(id);
      if (context.json) context.printJson({ key: keyJson(destroyed, data), forced: force && data.status !== 'unused' });
      else context.print(`Destroyed ${keyLine(destroyed, context.style)}; its bytes are gone from the store.\n`);
      return 0;
    });
  },
};

async function changeState(context: CommandContext, action: 'retire' | 'restore'): Promise<number> {
  const scans = action === 'retire' ? await new ScanLedger(context.stateDir).all() : [];
  return context.withServices(async ({ keys, location }) => {
    const id = context.positionals[0];
    const key = findKey(keys.listKeys(), id, location);
    const changed = action === 'retire' ? await keys.retireKey(id) : await keys.restoreKey(id);
    const data = action === 'retire' ? dataUsageOf(key, scans) : undefined;
    if (data?.status === 'in-use')
      context.notice(`warning: ${data.summary} use ${id}; they won't decrypt until it is restored`);
    if (context.json) context.printJson({ key: keyJson(changed, data) });
    else context.print(`${action === 'retire' ? 'Retired' : 'Restored'} ${keyLine(changed, context.style)}.\n`);
    return 0;
  });
}
