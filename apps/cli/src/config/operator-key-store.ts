import type { InstanceHeartbeat, KeyStore, KeyUsageDelta, StoredKeyRing, StoredKeyUsage } from 'nestjs-encryption';
import { EncryptionError } from 'nestjs-encryption';

/**
 * The key store holds no ring. The library would create one at boot; the CLI refuses, so a wrong
 * `KEY_STORE_PATH` or `DATABASE_URL` is reported instead of silently starting a new, empty ring.
 * An `EncryptionError`, so `KeyManagerService` passes it through unchanged.
 */
export class KeyRingMissingError extends EncryptionError {
  constructor(location: string) {
    super(
      'KEY_RING_MISSING',
      `The key store (${location}) holds no key ring: check KEY_STORE and its location. ` +
        'The application creates the ring when it first starts.',
    );
  }
}

/**
 * The configured store as the CLI uses it:
 * - no heartbeats: the CLI is a short-lived operator, not an instance, so a rotation elsewhere never
 *   waits for it (it still reads heartbeats, so its own rotations wait for every live instance);
 * - no first ring: an empty store is an error (`KeyRingMissingError`), not a reason to create keys.
 */
export class OperatorKeyStore implements KeyStore {
  readonly watch?: KeyStore['watch'];
  readonly instances?: () => Promise<InstanceHeartbeat[]>;
  readonly addUsage?: (deltas: KeyUsageDelta[]) => Promise<void>;
  readonly loadUsage?: () => Promise<Record<string, StoredKeyUsage>>;
  readonly ping?: () => Promise<void>;

  constructor(
    private readonly store: KeyStore,
    readonly location: string,
  ) {
    // Only what the store itself offers, so the key manager sees the same capabilities.
    if (store.watch) this.watch = (onChange) => store.watch!(onChange);
    if (store.instances) this.instances = () => store.instances!();
    if (store.addUsage) this.addUsage = (deltas) => store.addUsage!(deltas);
    if (store.loadUsage) this.loadUsage = () => store.loadUsage!();
    if (store.ping) this.ping = () => store.ping!();
  }

  async load(): Promise<StoredKeyRing | undefined> {
    const ring = await this.store.load();
    if (!ring) throw new KeyRingMissingError(this.location);
    return ring;
  }

  save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    return this.store.save(ring, expectedRevision);
  }

  async close(): Promise<void> {
    await this.store.close?.();
  }
}
