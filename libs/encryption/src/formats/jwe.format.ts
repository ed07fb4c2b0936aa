import type { JWK } from 'jose';
import { calculateJwkThumbprint, decodeProtectedHeader } from 'jose';

import { ctyOf, decodeForeignPayload, payloadTypeOfCty } from '../crypto/ciphertext-format.js';
import type { JweAlgorithm, JweRecipient } from '../crypto/jwe.js';
import { buildJwks, isCanonicalCompact, jweDecrypt, jweEncrypt } from '../crypto/jwe.js';
import type { Plaintext } from '../crypto/plaintext-codec.js';
import {
  DecryptionError,
  EncryptionConfigError,
  EncryptionInputError,
  FormatDisabledError,
  KeyNotFoundError,
  KeyRetiredError,
} from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { DecryptOptions } from '../interfaces/encryption-call-options.interface.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { KeyManagerService } from '../key-manager.service.js';
import { encodeInput } from './format.utils.js';

/** Key types this library encrypts to, and the `alg` each one gets. */
const ALG_BY_KEY: ReadonlyArray<{ kty: string; crv?: string; alg: JweAlgorithm }> = [
  { kty: 'RSA', alg: 'RSA-OAEP-256' },
  { kty: 'OKP', crv: 'X25519', alg: 'ECDH-ES+A256KW' },
  { kty: 'EC', crv: 'P-256', alg: 'ECDH-ES+A256KW' },
];

/**
 * Compact JWE (RSA-OAEP-256 or ECDH-ES+A256KW, with A256GCM) for `EncryptionService`: made to any
 * public JWK, decrypted with the ring's key pairs by `kid`. The payload's type travels in `cty`.
 */
export class JweFormat {
  constructor(
    private readonly options: ResolvedEncryptionOptions,
    private readonly keyManager: KeyManagerService,
  ) {}

  async encrypt(data: Plaintext, publicJwk?: JWK): Promise<string> {
    this.assertEnabled();
    const { type, bytes } = encodeInput(data);
    const recipient = await recipientOf(publicJwk === undefined ? this.keyManager.activePublicJwk() : publicJwk);
    return jweEncrypt(bytes, recipient, { cty: ctyOf(type) });
  }

  async decrypt(token: string, options: DecryptOptions): Promise<Plaintext> {
    if (!this.options.enableAsymmetric) {
      // Only a well-formed token is a use of the disabled feature; anything else is just undecryptable.
      // Either way it is the sender's input that is refused (an HTTP 400), not the server's configuration.
      if (isCanonicalCompact(token)) throw new FormatDisabledError('Asymmetric encryption', 'enableAsymmetric');
      throw new DecryptionError();
    }
    // Compact JWE has no room for external AAD: a context-bound caller must not get unbound data.
    if (options.context !== undefined) throw new DecryptionError();
    let plaintext: Buffer;
    try {
      plaintext = await this.open(token);
    } catch (error) {
      if (!(error instanceof KeyNotFoundError)) throw error;
      // Maybe another instance just rotated its key pair: reload (rate-limited) and look once more.
      await this.keyManager.reloadForUnknownKey();
      plaintext = await this.open(token);
    }
    // Decryption succeeded, so the protected header (the AAD) is authentic.
    return decodeForeignPayload(plaintext, payloadTypeOfCty(decodeProtectedHeader(token).cty), options.as);
  }

  private open(token: string): Promise<Buffer> {
    return jweDecrypt(token, (kid) => {
      // A token without kid (some clients omit it) is tried with the active key pair only.
      const id = kid ?? (this.keyManager.activePublicJwk().kid as string);
      const key = this.keyManager.findPrivateKey(id);
      if (!key && this.keyManager.listKeyPairs().some((pair) => pair.kid === id && pair.state === 'retired')) {
        throw new KeyRetiredError(id);
      }
      return key;
    });
  }

  private assertEnabled(): void {
    if (!this.options.enableAsymmetric) {
      throw new EncryptionConfigError(MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric'));
    }
  }
}

/** Validates a recipient's JWK and keeps its public members; the `kid` is the thumbprint when the JWK has none. */
async function recipientOf(jwk: JWK): Promise<JweRecipient> {
  const candidate = (typeof jwk === 'object' && jwk !== null ? jwk : {}) as Record<string, unknown>;
  const match = ALG_BY_KEY.find((entry) => entry.kty === candidate.kty && entry.crv === candidate.crv);
  const useOk = candidate.use === undefined || candidate.use === 'enc';
  const algOk = candidate.alg === undefined || candidate.alg === match?.alg;
  const kidOk = candidate.kid === undefined || (typeof candidate.kid === 'string' && candidate.kid.length > 0);
  if (!match || !useOk || !algOk || !kidOk) throw new EncryptionInputError(MESSAGES.INVALID_PUBLIC_JWK);
  let key: JWK;
  try {
    const kid = (candidate.kid as string | undefined) ?? (await calculateJwkThumbprint(jwk, 'sha256'));
    key = buildJwks([{ ...jwk, kid }]).keys[0];
  } catch {
    throw new EncryptionInputError(MESSAGES.INVALID_PUBLIC_JWK);
  }
  return { key, kid: key.kid!, alg: match.alg };
}
