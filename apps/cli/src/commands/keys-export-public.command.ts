import type { CommandDefinition } from '../cli-command.js';

export const keysExportPublicCommand: CommandDefinition = {
  name: 'keys export-public',
  summary: "Print the public keys of the ring's key pairs as a JWKS",
  description: `Prints the public halves of the ring's active and decrypt-only key pairs as a JSON Web Key Set
(RFC 7517), active first, for clients that encrypt to this service (JWE). Private keys are never
printed. The output is JSON with or without --json. A ring without any key pair gets its first one,
as the application does when it boots with asymmetric encryption enabled.`,
  usesKeyStore: true,
  examples: ['nestjs-encryption keys export-public > jwks.json'],
  async run(context) {
    return context.withServices(
      async ({ keys }) => {
        context.printJson(keys.publicJwks());
        return 0;
      },
      { options: { enableAsymmetric: true } },
    );
  },
};
