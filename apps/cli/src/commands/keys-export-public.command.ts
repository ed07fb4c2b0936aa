import type { KeyManagerService } from 'nestjs-encryption';

import type { CommandDefinition } from '../cli-command.js';
import { CliError, EXIT } from '../cli.errors.js';

interface Jwks {
  keys: Record<string, unknown>[];
}

/** `publicJwks()` arrives with the asymmetric key ring; older library builds don't have it. */
type WithPublicJwks = KeyManagerService & { publicJwks?: () => Jwks | Promise<Jwks> };

export const keysExportPublicCommand: CommandDefinition = {
  name: 'keys export-public',
  summary: 'Print the public keys of the asymmetric key pairs as a JWKS',
  description: `Prints the public halves of the ring's asymmetric key pairs as a JSON Web Key Set (RFC 7517), for
clients that encrypt to this service (JWE) or verify it. Private keys are never printed. The output is
JSON with or without --json.`,
  usesKeyStore: true,
  examples: ['nestjs-encryption keys export-public > jwks.json'],
  async run(context) {
    return context.withServices(async ({ keys }) => {
      const manager = keys as WithPublicJwks;
      if (typeof manager.publicJwks !== 'function') {
        throw new CliError(EXIT.FAILED, 'NOT_SUPPORTED', 'This build of nestjs-encryption has no asymmetric key pairs to export (KeyManagerService.publicJwks)');
      }
      const jwks = await manager.publicJwks();
      context.printJson(jwks);
      return 0;
    });
  },
};
