import type { CommandDefinition } from '../cli-command.js';
import { keyJson, keyLine } from './key-view.js';

export const keysRotateCommand: CommandDefinition = {
  name: 'keys rotate',
  summary: 'Make a new active key; the current one becomes decrypt-only',
  description: `Makes a new data key and, once every live instance sharing the store has loaded it (or after the
propagation delay), makes it the active key. The previous active key becomes decrypt-only, so
existing ciphertexts keep decrypting; the retention policy may retire older keys. Run \`reencrypt\`
afterwards to move stored ciphertexts to the new key.`,
  usesKeyStore: true,
  examples: ['nestjs-encryption keys rotate', 'nestjs-encryption keys rotate --json'],
  async run(context) {
    return context.withServices(async ({ keys }) => {
      const previous = keys.activeKey.id;
      const { instances } = await keys.fleetStatus();
      if (instances?.length) {
        context.notice(
          `Waiting for ${instances.length} live instance${instances.length === 1 ? '' : 's'} to load the new key before it becomes active...`,
        );
      }
      const active = await keys.rotate();
      if (context.json) {
        context.printJson({ active: keyJson(active), previousActiveId: previous });
      } else {
        context.print(`Rotated: ${keyLine(active, context.style)} is now active; ${previous} is decrypt-only.\n`);
      }
      return 0;
    });
  },
};
