import type { EncryptionContext, EncryptionService, KeyManagerService } from 'nestjs-encryption';
import { ciphertextKeyId, EncryptionError } from 'nestjs-encryption';

/** What happened to one stored value. */
export type ValueOutcome =
  /** Made with the active key already: left as it is. */
  | { kind: 'current'; keyId: string }
  /** Decrypted with `fromKeyId` and encrypted again with the active key `keyId`. */
  | { kind: 'rewritten'; keyId: string; fromKeyId: string; value: string | Buffer }
  /** `--dry-run`: would be rewritten; still uses `keyId`. */
  | { kind: 'stale'; keyId: string }
  /** Left as it was: it could not be decrypted (`keyId` when the envelope names one). */
  | { kind: 'failed'; keyId?: string; code: string; reason: string };

/**
 * Moves one ciphertext to the active key: decrypts it with whichever retained key made it and encrypts
 * the plaintext again, in the same form (base64url text or binary envelope) and with the same context.
 * Never throws for a bad value; it becomes a `failed` outcome with the library's error code.
 */
export class ValueReencryptor {
  constructor(
    private readonly encryption: EncryptionService,
    private readonly keys: KeyManagerService,
    private readonly dryRun: boolean,
  ) {}

  async reencrypt(value: unknown, context?: EncryptionContext): Promise<ValueOutcome> {
    if (typeof value !== 'string' && !Buffer.isBuffer(value)) {
      return {
        kind: 'failed',
        code: 'NOT_A_CIPHERTEXT',
        reason: `not a ciphertext (a ${value === null ? 'null' : typeof value})`,
      };
    }
    const keyId = ciphertextKeyId(value);
    if (keyId === undefined)
      return { kind: 'failed', code: 'NOT_A_CIPHERTEXT', reason: 'not a nestjs-encryption ciphertext' };
    if (keyId === this.keys.activeKey.id) return { kind: 'current', keyId };
    let plaintext;
    try {
      plaintext = await this.encryption.decrypt(value, { context });
    } catch (error) {
      if (!(error instanceof EncryptionError)) throw error;
      return { kind: 'failed', keyId, code: error.code, reason: error.message };
    }
    if (this.dryRun) return { kind: 'stale', keyId };
    const rewritten =
      typeof value === 'string'
        ? await this.encryption.encryptToString(plaintext, { context })
        : await this.encryption.encrypt(plaintext, { context });
    return { kind: 'rewritten', keyId: ciphertextKeyId(rewritten)!, fromKeyId: keyId, value: rewritten };
  }
}
