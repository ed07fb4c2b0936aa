import { fernetDecrypt, fernetEncrypt, fernetRotate } from '../crypto/fernet.js';
import type { ManagedKey } from '../crypto/key-ring.js';
import type { Plaintext } from '../crypto/plaintext-codec.js';
import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { DecryptOptions, EncryptOptions } from '../interfaces/encryption-call-options.interface.js';
import type { ResolvedEncryptionOptions } from '../interfaces/encryption-module-options.interface.js';
import type { KeyManagerService } from '../key-manager.service.js';
import { encodeInput, recordKeyUse } from './format.utils.js';

/**
 * Fernet tokens keyed from the ring, for `EncryptionService`. Each data key's Fernet key is derived
 * with HKDF (docs/FORMAT.md); tokens are made with the active key, and decrypted like Python's
 * `MultiFernet`: the active key first, then every other usable key, newest first.
 */
export class FernetFormat {
  private cache?: { usable: readonly ManagedKey[]; keys: Buffer[] };

  constructor(
    private readonly options: ResolvedEncryptionOptions,
    private readonly keyManager: KeyManagerService,
  ) {}

  /**
   * A token (text) for `data`: strings as UTF-8, bytes as they are, other JSON values as JSON text.
   * A context or an explicit key can't be honoured by a Fernet token, so they are refused.
   */
  encrypt(data: Plaintext, options: EncryptOptions): string {
    if (options.context !== undefined) {
      throw new EncryptionInputError(MESSAGES.FERNET_OPTION_UNSUPPORTED('an encryption context'));
    }
    if (options.key !== undefined) {
      throw new EncryptionInputError(MESSAGES.FERNET_OPTION_UNSUPPORTED('an explicit key'));
    }
    const { bytes } = encodeInput(data);
    const active = this.keyManager.activeKey;
    const token = fernetEncrypt(active.dataKey.fernetKey(), bytes, { now: this.now() });
    recordKeyUse(active, 'encryptions');
    return token;
  }

  /** The payload bytes. A token the ring's keys don't open reloads the ring (rate-limited) and is tried once more. */
  async decrypt(token: string | Uint8Array, options: DecryptOptions): Promise<Buffer> {
    // A Fernet token can't be bound to a context: accepting it would silently drop the binding.
    if (options.context !== undefined) throw new DecryptionError();
    const text = tokenText(token);
    const ttlSeconds = options.fernetTtlSeconds ?? this.options.fernetTtlSeconds;
    const attempt = () => fernetDecrypt(this.keys(), text, { ttlSeconds, now: this.now() });
    const revision = this.keyManager.revision;
    try {
      return attempt();
    } catch (error) {
      if (!(error instanceof DecryptionError)) throw error;
      await this.keyManager.reloadForUnknownKey();
      if (this.keyManager.revision === revision) throw error;
      return attempt();
    }
  }

  /** Python's `MultiFernet.rotate`: the same payload and timestamp, under the active key. No TTL check. */
  rotate(token: string | Uint8Array): string {
    return fernetRotate(this.keys(), tokenText(token));
  }

  private keys(): Buffer[] {
    const usable = this.keyManager.usableKeys();
    if (this.cache?.usable !== usable) this.cache = { usable, keys: usable.map((key) => key.dataKey!.fernetKey()) };
    return this.cache.keys;
  }

  private now(): Date {
    return new Date(this.options.clock.now());
  }
}

/** Binary tokens (what `encrypt()` returns) back to the padded url-safe base64 text of the spec. */
function tokenText(token: string | Uint8Array): string {
  if (typeof token === 'string') return token;
  const text = Buffer.from(token.buffer, token.byteOffset, token.byteLength).toString('base64url');
  return text + '='.repeat((4 - (text.length % 4)) % 4);
}
