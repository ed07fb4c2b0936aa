import type { AeadCipher } from './aead.js';
import { hkdfSha256 } from './hkdf.js';

const HKDF_SALT = Buffer.from('nestjs-encryption/v1');

/** Length of the key commitment stored in every envelope header. */
export const COMMITMENT_SIZE = 32;

function hkdf(secret: Buffer, info: string, length: number): Buffer {
  return hkdfSha256(secret, HKDF_SALT, info, length);
}

/**
 * A data key with everything derived from it, computed once per key rather than per message.
 *
 * The raw key is never used directly: HKDF-SHA256 derives one cipher key per algorithm (so one key
 * can't be abused across algorithms) and a commitment value. The commitment is stored in each
 * envelope and checked before decryption, which makes the format key-committing: finding a second
 * key that opens the same envelope requires an HMAC-SHA256 collision.
 */
export class DataKey {
  readonly commitment: Buffer;
  private readonly cipherKeys = new Map<number, Buffer>();
  private fernet?: Buffer;

  constructor(
    readonly id: string,
    private readonly secret: Buffer,
  ) {
    this.commitment = hkdf(secret, 'commitment', COMMITMENT_SIZE);
  }

  cipherKey(cipher: AeadCipher): Buffer {
    let key = this.cipherKeys.get(cipher.id);
    if (!key) {
      key = hkdf(this.secret, `cipher:${cipher.name}`, cipher.keySize);
      this.cipherKeys.set(cipher.id, key);
    }
    return key;
  }

  /**
   * The Fernet key of this data key (32 bytes: signing key ‖ AES-128 key), HKDF info `fernet`. Kept
   * apart from every native cipher key by its info, so exporting it reveals nothing about them.
   */
  fernetKey(): Buffer {
    return (this.fernet ??= hkdf(this.secret, 'fernet', 32));
  }

  /**
   * The subkey of one stream (docs/FORMAT.md, "Streams"): HKDF with the stream's random salt and the
   * info `stream:<algorithm>`, so every stream has a key of its own. Not cached: one per stream.
   */
  streamKey(cipher: AeadCipher, salt: Buffer): Buffer {
    return hkdfSha256(this.secret, salt, `stream:${cipher.name}`, cipher.keySize);
  }

  /** Overwrites the secret and every derived key; the object is unusable afterwards. */
  destroy(): void {
    this.secret.fill(0);
    this.commitment.fill(0);
    this.fernet?.fill(0);
    for (const key of this.cipherKeys.values()) key.fill(0);
    this.cipherKeys.clear();
  }
}

/** A stable, non-secret id for a caller-supplied key, so envelopes made with it stay self-describing. */
export function explicitKeyId(secret: Buffer): string {
  return `x-${hkdf(secret, 'explicit-key-id', 8).toString('hex')}`;
}
