import { randomBytes } from 'node:crypto';

import type { OnModuleInit } from '@nestjs/common';
import { Injectable } from '@nestjs/common';

import { DataKey } from './crypto/data-key.js';
import type { ManagedKey } from './crypto/key-ring.js';
import { KeyRing } from './crypto/key-ring.js';
import { unwrapKey, wrapKey } from './crypto/key-wrap.js';
import type { DerivedKey } from './crypto/password-key-derivation.js';
import { deriveKeyFromPassword } from './crypto/password-key-derivation.js';
import type { RsaKeyPair } from './crypto/rsa-key-pair.js';
import { generateRsaKeyPair } from './crypto/rsa-key-pair.js';
import { EncryptionEvents } from './encryption-events.service.js';
import { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
import { EncryptionConfigError, EncryptionError, EncryptionInputError } from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { ResolvedEncryptionOptions } from './interfaces/encryption-module-options.interface.js';
import type { KeyMetadata } from './interfaces/key-metadata.interface.js';
import type { StoredKey, StoredKeyRing } from './interfaces/key-store.interface.js';

const KEY_ID_BYTES = 8;

/**
 * Owns the key ring: loads it from the key store at boot, rotates it, and hands keys to
 * `EncryptionService`. Key bytes never leave this service except as `DataKey`s in memory.
 */
@Injectable()
export class KeyManagerService implements OnModuleInit {
  private ring?: KeyRing;
  private revision = 0;
  /** The stored (wrapped) form of each loaded key, reused when the next ring is written. */
  private storedById = new Map<string, StoredKey>();
  /** Rotations run one after another; each waits for the previous one to finish. */
  private rotationQueue: Promise<unknown> = Promise.resolve();

  constructor(
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
    private readonly events: EncryptionEvents,
  ) {}

  async onModuleInit(): Promise<void> {
    await this.reload();
    if (!this.ring) await this.rotate();
  }

  /** The key new ciphertexts are made with. */
  get activeKey(): ManagedKey {
    return this.loadedRing().active;
  }

  /** Any loaded key by id, in O(1): the active one or a retained previous one. */
  findKey(id: string): ManagedKey | undefined {
    return this.loadedRing().find(id);
  }

  /**
   * Makes a new active key; the previous active key becomes decrypt-only and the retention policy
   * drops keys beyond it. Concurrent calls are queued, each producing exactly one new version.
   */
  rotate(): Promise<KeyMetadata> {
    const rotation = this.rotationQueue.then(() => this.rotateNow());
    this.rotationQueue = rotation.catch(() => undefined);
    return rotation;
  }

  /** Metadata of every loaded key, newest first; never key bytes. */
  listKeys(): KeyMetadata[] {
    const now = this.options.clock.now();
    return this.loadedRing()
      .all()
      .map((key) => toMetadata(key, now));
  }

  /**
   * Derives a key from a password with PBKDF2-HMAC-SHA256 (`iterations`, `keySize`), off the event
   * loop. A random salt of `saltSize` bytes is made when none is given; store it with the data.
   */
  async deriveKey(password: string | Buffer, salt?: Buffer): Promise<DerivedKey> {
    if (!this.options.enableKeyDerivation) {
      throw new EncryptionConfigError(MESSAGES.FEATURE_DISABLED('Key derivation', 'enableKeyDerivation'));
    }
    if (password === undefined || password === null || password.length === 0) {
      throw new EncryptionInputError(MESSAGES.EMPTY_PASSWORD);
    }
    if (salt !== undefined && salt.length < 16) throw new EncryptionInputError(MESSAGES.SALT_TOO_SHORT(16));
    return deriveKeyFromPassword(password, salt, this.options);
  }

  /** A new RSA key pair of `rsaKeySize` bits, generated off the event loop, as PEM and JWK. */
  async generateKeyPair(): Promise<RsaKeyPair> {
    if (!this.options.enableAsymmetric) {
      throw new EncryptionConfigError(MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric'));
    }
    return generateRsaKeyPair(this.options.rsaKeySize);
  }

  /** Replaces the loaded ring with the store's, keeping usage counters of keys that are still there. */
  async reload(): Promise<void> {
    const stored = await this.options.keyStore.load();
    if (stored) this.adopt(stored);
  }

  private async rotateNow(): Promise<KeyMetadata> {
    for (;;) {
      const now = new Date(this.options.clock.now());
      const previous = this.ring?.all() ?? [];
      const id = `k${(previous[0]?.version ?? 0) + 1}-${randomBytes(KEY_ID_BYTES).toString('hex')}`;
      const secret = randomBytes(this.options.keySize);
      const newKey: StoredKey = {
        id,
        version: (previous[0]?.version ?? 0) + 1,
        createdAt: now.toISOString(),
        state: 'active',
        wrappedKey: wrapKey(this.options.masterKey, id, secret),
      };
      const kept = this.retain(previous, now).map((key) => this.toStored(key));
      const next: StoredKeyRing = { revision: this.revision + 1, keys: [newKey, ...kept] };
      if (await this.options.keyStore.save(next, this.revision)) {
        this.adopt(next, new Map([[id, secret]]));
        const key = toMetadata(this.loadedRing().active, now.getTime());
        this.events.emit({ type: 'key-rotated', key });
        return key;
      }
      secret.fill(0);
      // Another writer rotated first: take its ring and build on top of it.
      await this.reload();
    }
  }

  private retain(previous: ManagedKey[], now: Date): ManagedKey[] {
    const { maxPreviousKeys = Infinity, maxAgeMs = Infinity } = this.options.keyRetention;
    return previous
      .filter((key) => now.getTime() - key.createdAt.getTime() <= maxAgeMs)
      .slice(0, maxPreviousKeys);
  }

  private toStored(key: ManagedKey): StoredKey {
    const stored = this.storedById.get(key.id);
    if (!stored) throw new Error(`Key ${key.id} has no stored form`);
    return { ...stored, state: 'decrypt-only' };
  }

  private adopt(stored: StoredKeyRing, fresh = new Map<string, Buffer>()): void {
    const keys = stored.keys.map((entry): ManagedKey => {
      const existing = this.ring?.find(entry.id);
      const dataKey = existing?.dataKey ?? new DataKey(entry.id, fresh.get(entry.id) ?? this.unwrap(entry));
      return {
        id: entry.id,
        version: entry.version,
        createdAt: new Date(entry.createdAt),
        state: entry.state,
        dataKey,
        usage: existing?.usage ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 },
      };
    });
    const ring = new KeyRing(keys);
    const dropped = this.ring?.all().filter((key) => !ring.find(key.id)) ?? [];
    this.ring = ring;
    this.revision = stored.revision;
    this.storedById = new Map(stored.keys.map((key) => [key.id, key]));
    for (const key of dropped) key.dataKey.destroy();
  }

  private unwrap(entry: StoredKey): Buffer {
    const secret = entry.wrappedKey && unwrapKey(this.options.masterKey, entry.id, entry.wrappedKey);
    if (!secret) {
      throw new EncryptionConfigError(
        `Key ${entry.id} can't be unwrapped: the master key is wrong or the stored key was altered`,
      );
    }
    return secret;
  }

  private loadedRing(): KeyRing {
    if (!this.ring) throw new EncryptionError('KEY_RING_NOT_READY', MESSAGES.KEY_RING_NOT_READY);
    return this.ring;
  }
}

function toMetadata(key: ManagedKey, now: number): KeyMetadata {
  return {
    id: key.id,
    version: key.version,
    state: key.state,
    createdAt: key.createdAt,
    ageMs: now - key.createdAt.getTime(),
    encryptions: key.usage.encryptions,
    decryptions: key.usage.decryptions,
    lastUsedAt: key.usage.lastUsedAt ? new Date(key.usage.lastUsedAt) : undefined,
  };
}
