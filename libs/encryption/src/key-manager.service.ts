import type { KeyObject } from 'node:crypto';
import { randomBytes } from 'node:crypto';

import type { OnModuleDestroy, OnModuleInit } from '@nestjs/common';
import { Injectable } from '@nestjs/common';
import type { JSONWebKeySet, JWK } from 'jose';

import { fromBase64, toBase64 } from './crypto/base64.js';
import { DataKey } from './crypto/data-key.js';
import { encodeFernetKey } from './crypto/fernet.js';
import { buildJwks } from './crypto/jwe.js';
import type { ActiveKey, ManagedKey } from './crypto/key-ring.js';
import { KeyRing } from './crypto/key-ring.js';
import { unwrapKey, wrapKey } from './crypto/key-wrap.js';
import { deriveMasterKey, makeMasterKeyCheck, MASTER_KEY_SIZE, masterKeyMatches } from './crypto/master-key.js';
import type { DerivedKey } from './crypto/password-key-derivation.js';
import { deriveKeyFromPassword } from './crypto/password-key-derivation.js';
import type { RsaKeyPair } from './crypto/rsa-key-pair.js';
import { generateRsaKeyPair } from './crypto/rsa-key-pair.js';
import { createStoredKeyPair, keyPairSpecOf, rewrapKeyPair, unwrapPrivateKey } from './crypto/stored-key-pair.js';
import { InjectEncryptionOptions } from './decorators/inject-encryption-options.decorator.js';
import { EncryptionAuditor } from './encryption-audit.service.js';
import { EncryptionEvents } from './encryption-events.service.js';
import {
  EncryptionConfigError,
  EncryptionError,
  EncryptionInputError,
  KeyStateError,
  KeyStoreUnavailableError,
  MasterKeyMismatchError,
} from './errors/encryption.errors.js';
import { MESSAGES } from './errors/encryption.messages.js';
import type { ResolvedEncryptionOptions } from './interfaces/encryption-module-options.interface.js';
import type { KeyMetadata } from './interfaces/key-metadata.interface.js';
import type { KeyPairMetadata } from './interfaces/key-pair-metadata.interface.js';
import type {
  InstanceHeartbeat,
  KeyPairState,
  KeyState,
  StoredKey,
  StoredKeyPair,
  StoredKeyRing,
} from './interfaces/key-store.interface.js';
import { KeyUsageTracker } from './key-usage-tracker.js';
import { InMemoryKeyStore } from './stores/in-memory-key.store.js';

const KEY_ID_BYTES = 8;
const USABLE: ReadonlySet<KeyState> = new Set(['staged', 'active', 'decrypt-only']);
/** Key pair states that are published in the JWKS and decrypt. */
const PUBLISHED_PAIR_STATES: ReadonlySet<KeyPairState> = new Set(['active', 'decrypt-only']);

/** Where the store stands, for health checks. */
export interface KeyStoreStatus {
  reachable: boolean;
  /** Error code of the last failure while unreachable; never a message that could carry secrets. */
  lastError?: string;
  /** ISO 8601 time the store was last reached. */
  lastContactAt?: string;
  /** A rotation that failed on the store and will be retried. */
  rotationPending: boolean;
}

/** This instance and the others sharing the store, for health checks. */
export interface KeyRingFleetStatus {
  instanceId: string;
  revision: number;
  /** Live instances as the store reports them; `undefined` when the store has no heartbeats. */
  instances?: InstanceHeartbeat[];
  /** Live instances holding another revision than this one. */
  disagreeing: InstanceHeartbeat[];
}

/**
 * Owns the key ring: loads it from the key store at boot, rotates it without races across any number
 * of instances, moves keys through their lifecycle, and hands keys to `EncryptionService`. Key bytes
 * leave this service only as `DataKey`s in memory, and reach the store only wrapped under the master key.
 *
 * Rotation is two compare-and-set writes on the stored ring: a new key is first published `staged`
 * (decrypt-only everywhere), then promoted to `active` once every live instance has loaded it, or
 * after `keyPropagation.delayMs`. So no instance meets a ciphertext whose key it hasn't loaded.
 */
@Injectable()
export class KeyManagerService implements OnModuleInit, OnModuleDestroy {
  private ring?: KeyRing;
  private stored?: StoredKeyRing;
  private masterKey?: Buffer;
  /** Writes (rotations, lifecycle changes, rewraps) run one after another in this process. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private readonly usage = new KeyUsageTracker();
  private status: KeyStoreStatus = { reachable: true, rotationPending: false };
  /** Salt of a passphrase-derived master key, stored with the first ring. */
  private masterKeySalt?: Buffer;
  private timer?: NodeJS.Timeout;
  private stopWatching?: () => Promise<void>;
  private lastUnknownKeyReload = 0;
  private unknownKeyReload?: Promise<void>;
  private tickRunning = false;
  /** Private keys of usable key pairs, unwrapped on first use. */
  private readonly privateKeys = new Map<string, KeyObject>();
  /** Usable keys of the current ring (active first), computed once per ring. */
  private usable?: { ring: KeyRing; keys: ManagedKey[] };

  constructor(
    @InjectEncryptionOptions() private readonly options: ResolvedEncryptionOptions,
    private readonly events: EncryptionEvents,
    private readonly auditor: EncryptionAuditor,
  ) {}

  /** Identifies this process in heartbeats and audit records. */
  get instanceId(): string {
    return this.options.instanceId;
  }

  async onModuleInit(): Promise<void> {
    const store = this.options.keyStore;
    const stored = await this.storeCall('load', () => store.load());
    this.masterKey = await this.resolveMasterKey(stored);
    if (stored) this.adopt(stored);
    else await this.createFirstKey();
    if (this.options.enableAsymmetric && !this.activeStoredKeyPair()) await this.enqueue(() => this.addFirstKeyPair());
    if (store.loadUsage) {
      const totals = await this.tryStore('load usage', () => store.loadUsage!());
      if (totals) this.usage.setStoredTotals(totals);
    }
    if (store.watch) {
      this.stopWatching = await this.tryStore('watch', () =>
        store.watch!((revision) => {
          // Heartbeat right away, so a rotating instance waiting on this one can promote sooner.
          if (revision > (this.stored?.revision ?? 0)) void this.reloadQuietly().then(() => this.heartbeat());
        }),
      );
    }
    await this.heartbeat();
    this.timer = setInterval(() => void this.tick(), this.options.keyPropagation.heartbeatIntervalMs);
    this.timer.unref();
  }

  async onModuleDestroy(): Promise<void> {
    clearInterval(this.timer);
    await this.writeQueue;
    await this.flushUsage();
    await this.signOff();
    await this.stopWatching?.().catch(() => undefined);
    await this.options.keyStore.close?.().catch(() => undefined);
  }

  /** The key new ciphertexts are made with. */
  get activeKey(): ActiveKey {
    return this.loadedRing().active;
  }

  /** Any loaded key by id, in O(1), whatever its state (check `dataKey` before use). */
  findKey(id: string): ManagedKey | undefined {
    return this.loadedRing().find(id);
  }

  /** Revision of the stored ring this instance holds. */
  get revision(): number {
    return this.stored?.revision ?? 0;
  }

  /**
   * Makes a new active key; the previous one becomes decrypt-only and the retention policy retires
   * keys beyond it. Calls in one process are queued, each producing one new version. Instances that
   * rotate at the same moment through a shared store produce exactly one new key, which all adopt.
   * Rejects with `KeyStoreUnavailableError` when the store is down; the rotation is then retried in
   * the background until it succeeds.
   *
   * `ifActiveKeyId` makes the rotation conditional, like a compare-and-set: rotate away from that key
   * only, and when it was already replaced (by another instance, or a call queued earlier) adopt that
   * rotation instead of adding another key. Without it, a call rotates from whichever key is active
   * when its turn comes.
   */
  rotate(options: { ifActiveKeyId?: string } = {}): Promise<KeyMetadata> {
    return this.enqueue(() => this.rotateNow(options.ifActiveKeyId ?? this.activeKey.id));
  }

  /**
   * Rotates only if the active key is older than `maxAgeMs` (or encrypted more than
   * `maxEncryptionsPerKey` times), checked again after loading the store's ring, so a fleet of
   * schedulers produces one rotation per interval. Resolves `undefined` when no rotation was due.
   */
  rotateIfDue(maxAgeMs = this.options.keyRotationInterval): Promise<KeyMetadata | undefined> {
    return this.enqueue(async () => {
      await this.reload();
      if (!this.rotationDue(maxAgeMs, this.now())) return undefined;
      return this.rotateNow(this.activeKey.id);
    });
  }

  /** Retires a previous key: it stays stored but refuses decryption until restored. */
  retireKey(id: string): Promise<KeyMetadata> {
    return this.changeState(id, 'retired', ['decrypt-only'], 'retired');
  }

  /** Lets a retired key decrypt again. */
  restoreKey(id: string): Promise<KeyMetadata> {
    return this.changeState(id, 'decrypt-only', ['retired'], 'restored');
  }

  /** Erases a retired or previous key's bytes for good; its metadata stays for the audit trail. */
  destroyKey(id: string): Promise<KeyMetadata> {
    return this.changeState(id, 'destroyed', ['decrypt-only', 'retired'], 'destroyed');
  }

  /**
   * Re-wraps every stored key under a new master key (32 bytes or base64, or `{ passphrase }`) in one
   * compare-and-set write: a crash leaves the old or the new wrapping, never neither. Data encrypted
   * with the keys is untouched. Other instances must be restarted with the new master key.
   */
  rewrapMasterKey(newMasterKey: Buffer | string | { passphrase: string }): Promise<void> {
    return this.enqueue(async () => {
      const next = typeof newMasterKey === 'object' && !Buffer.isBuffer(newMasterKey)
        ? await deriveMasterKey(newMasterKey.passphrase)
        : { key: parseMasterKey(newMasterKey), salt: undefined };
      for (;;) {
        const current = this.currentStored();
        const keys = current.keys.map((key) =>
          key.wrappedKey ? { ...key, wrappedKey: wrapKey(next.key, key.id, this.unwrap(key)) } : key,
        );
        const keyPairs = current.keyPairs?.map((pair) => {
          const rewrapped = rewrapKeyPair(this.masterKey!, next.key, pair);
          if (!rewrapped) throw new MasterKeyMismatchError();
          return rewrapped;
        });
        const ring: StoredKeyRing = {
          revision: current.revision + 1,
          keys,
          masterKeyCheck: makeMasterKeyCheck(next.key),
          ...(next.salt ? { masterKeySalt: toBase64(next.salt) } : {}),
          ...(keyPairs ? { keyPairs } : {}),
        };
        if (await this.save(ring, current.revision)) {
          this.masterKey = next.key;
          this.auditor.record('master-key-rewrapped', undefined, { keys: keys.length, revision: ring.revision });
          return;
        }
        await this.reload();
      }
    });
  }

  /** Metadata of every key, newest first, with usage totals across instances; never key bytes. */
  listKeys(): KeyMetadata[] {
    return this.loadedRing()
      .all()
      .map((key) => this.toMetadata(key));
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

  /**
   * Makes a new active key pair (`asymmetricAlgorithm`); the previous one becomes decrypt-only (still
   * in the JWKS) and the `keyRetention` policy retires older ones. One compare-and-set write: instances
   * rotating at the same moment produce one new pair, which all adopt. An instance that meets a JWE for
   * a pair it hasn't loaded yet reloads the ring (see `reloadForUnknownKey`).
   */
  async rotateKeyPair(): Promise<KeyPairMetadata> {
    this.assertAsymmetric();
    return this.enqueue(async () => {
      const startKid = this.activeStoredKeyPair()?.kid;
      let fresh: StoredKeyPair | undefined;
      for (;;) {
        const current = this.currentStored();
        const active = current.keyPairs?.find((pair) => pair.state === 'active');
        if (active && active.kid !== startKid) return this.toKeyPairMetadata(active); // join that rotation
        if (!fresh) {
          fresh = await this.newKeyPair();
          continue; // the ring may have changed while the pair was generated
        }
        const keyPairs = this.keyPairsAfterRotation(current.keyPairs ?? [], fresh);
        if (await this.save({ ...current, revision: current.revision + 1, keyPairs }, current.revision)) {
          this.auditor.record('key-pair-activated', fresh.kid, { alg: fresh.alg, revision: current.revision + 1 });
          return this.toKeyPairMetadata(fresh);
        }
        await this.reload();
      }
    });
  }

  /** The JWK Set (RFC 7517) of the active and decrypt-only key pairs, active first: public members only. */
  publicJwks(): JSONWebKeySet {
    this.assertAsymmetric();
    return buildJwks(this.publishedKeyPairs().map((pair) => pair.publicJwk));
  }

  /** The active key pair's public JWK, what `encryptForPublicKey()` encrypts to by default. */
  activePublicJwk(): JWK {
    this.assertAsymmetric();
    const active = this.activeStoredKeyPair();
    if (!active) throw new EncryptionError('KEY_RING_NOT_READY', MESSAGES.NO_ACTIVE_KEY_PAIR);
    return { ...active.publicJwk };
  }

  /**
   * The private key of an active or decrypt-only key pair, unwrapped on first use and cached;
   * `undefined` for an unknown or retired `kid`.
   */
  findPrivateKey(kid: string): KeyObject | undefined {
    this.assertAsymmetric();
    const cached = this.privateKeys.get(kid);
    if (cached) return cached;
    const pair = this.stored?.keyPairs?.find((candidate) => candidate.kid === kid);
    if (!pair || !PUBLISHED_PAIR_STATES.has(pair.state)) return undefined;
    const key = unwrapPrivateKey(this.masterKey!, pair);
    if (!key) throw new MasterKeyMismatchError();
    this.privateKeys.set(kid, key);
    return key;
  }

  /** Metadata of every key pair, newest first; never private keys. */
  listKeyPairs(): KeyPairMetadata[] {
    return [...(this.stored?.keyPairs ?? [])]
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
      .map((pair) => this.toKeyPairMetadata(pair));
  }

  /** Keys that may decrypt (active, staged, decrypt-only): the active one first, then newest first. */
  usableKeys(): readonly ManagedKey[] {
    const ring = this.loadedRing();
    if (this.usable?.ring !== ring) {
      const others = ring.all().filter((key) => key.dataKey && key !== ring.active);
      this.usable = { ring, keys: [ring.active, ...others] };
    }
    return this.usable.keys;
  }

  /**
   * **Secret material, for interoperability only.** The Fernet keys (url-safe base64, the form Python's
   * `Fernet(key)` takes) of the usable ring keys, active first: `MultiFernet([Fernet(k) for k in keys])`
   * then decrypts every token this service makes with `algorithm: 'fernet'`, and its tokens decrypt
   * here. Anyone holding them can read and forge those tokens; native envelopes stay out of reach (the
   * Fernet key is derived with its own HKDF info). Every call is audited.
   */
  exportFernetKeys(): string[] {
    const keys = this.usableKeys().map((key) => encodeFernetKey(key.dataKey!.fernetKey()));
    this.auditor.record('fernet-keys-exported', this.activeKey.id, { keys: keys.length, revision: this.revision });
    return keys;
  }

  /**
   * Replaces the loaded ring with the store's when the store has a newer one. Rejects with
   * `KeyStoreUnavailableError` when the store has lost the ring this instance holds.
   */
  async reload(): Promise<void> {
    const stored = await this.storeCall('load', () => this.options.keyStore.load());
    // Otherwise each compare-and-set loop would retry against the empty store for ever, as fast as it answers.
    if (!stored && this.stored) throw new KeyStoreUnavailableError(MESSAGES.STORE_RING_MISSING);
    if (stored && stored.revision !== this.stored?.revision) this.adopt(stored);
  }

  /**
   * Called when a ciphertext names an unknown key: reloads the ring, at most once per
   * `unknownKeyReloadIntervalMs` however many such ciphertexts arrive, so random key ids can't be
   * used to hammer the store. Never throws.
   */
  reloadForUnknownKey(): Promise<void> {
    if (this.unknownKeyReload) return this.unknownKeyReload;
    if (Date.now() - this.lastUnknownKeyReload < this.options.unknownKeyReloadIntervalMs) return Promise.resolve();
    this.lastUnknownKeyReload = Date.now();
    this.unknownKeyReload = this.reloadQuietly().finally(() => (this.unknownKeyReload = undefined));
    return this.unknownKeyReload;
  }

  /** Reachability of the key store as last seen; no network call. */
  get storeStatus(): KeyStoreStatus {
    return { ...this.status };
  }

  /** Store reachability right now (a `ping`, or a `load` when the store has no ping). */
  async checkStore(): Promise<KeyStoreStatus> {
    const store = this.options.keyStore;
    await this.tryStore('ping', () => (store.ping ? store.ping() : store.load().then(() => undefined)));
    return { ...this.status };
  }

  /** Which revision each live instance holds, to spot instances that disagree. */
  async fleetStatus(): Promise<KeyRingFleetStatus> {
    const store = this.options.keyStore;
    const instances = store.instances ? await this.tryStore('list instances', () => store.instances!()) : undefined;
    return {
      instanceId: this.instanceId,
      revision: this.revision,
      instances,
      disagreeing: (instances ?? []).filter((instance) => instance.revision !== this.revision),
    };
  }

  /** One background round: heartbeat, pick up changes, promote staged keys, flush usage, retry deferred work. */
  async tick(now = this.now()): Promise<void> {
    if (this.tickRunning) return;
    this.tickRunning = true;
    try {
      await this.reloadQuietly();
      await this.heartbeat();
      await this.flushUsage();
      const staged = this.stored?.keys.find((key) => key.state === 'staged');
      if (staged || this.status.rotationPending || this.usageLimitReached()) {
        await this.enqueue(async () => {
          if (this.status.rotationPending || this.usageLimitReached()) await this.rotateNow(this.activeKey.id);
          else await this.awaitPromotion(now);
        }).catch(() => undefined);
      }
    } finally {
      this.tickRunning = false;
    }
  }

  private async rotateNow(startActiveId: string): Promise<KeyMetadata> {
    try {
      for (;;) {
        const current = this.currentStored();
        const someoneElseRotated =
          current.keys.some((key) => key.state === 'staged') ||
          current.keys.find((key) => key.state === 'active')?.id !== startActiveId;
        if (someoneElseRotated) break; // join that rotation instead of adding another key
        const version = Math.max(...current.keys.map((key) => key.version)) + 1;
        const key = this.newStoredKey(version, 'staged', current.revision + 1);
        if (await this.save({ ...current, revision: current.revision + 1, keys: [key.stored, ...current.keys] }, current.revision, key)) {
          this.auditor.record('key-staged', key.stored.id, { version, revision: current.revision + 1 });
          break;
        }
        await this.reload();
      }
      const active = await this.awaitPromotion();
      this.status.rotationPending = false;
      return active;
    } catch (error) {
      if (error instanceof KeyStoreUnavailableError) this.status.rotationPending = true;
      throw error;
    }
  }

  /** Promotes the staged key once every live instance holds it, or once the propagation delay passed. */
  private async awaitPromotion(now?: number): Promise<KeyMetadata> {
    for (;;) {
      const current = this.currentStored();
      const staged = current.keys.find((key) => key.state === 'staged');
      if (!staged) return this.toMetadata(this.activeKey);
      if (await this.promotionDue(staged, now ?? this.now())) {
        if (await this.save(this.promoted(current, staged), current.revision)) {
          this.auditor.record('key-activated', staged.id, { version: staged.version, revision: current.revision + 1 });
          const key = this.toMetadata(this.activeKey);
          this.events.emit({ type: 'key-rotated', key });
          return key;
        }
      } else if (now !== undefined) {
        return this.toMetadata(this.activeKey); // a background tick doesn't wait
      } else {
        await sleep(Math.min(250, this.options.keyPropagation.heartbeatIntervalMs));
      }
      await this.reload();
    }
  }

  private async promotionDue(staged: StoredKey, now: number): Promise<boolean> {
    const store = this.options.keyStore;
    if (now - Date.parse(staged.stateChangedAt ?? staged.createdAt) >= this.options.keyPropagation.delayMs) return true;
    // Without heartbeats the store can't know other instances: this one is taken to be the only one.
    if (!store.instances) return true;
    await this.heartbeat();
    const instances = await this.storeCall('list instances', () => store.instances!());
    const stagedAt = staged.stagedRevision ?? 0;
    return instances.every((instance) => instance.revision >= stagedAt);
  }

  /** The ring with `staged` active, the old active decrypt-only, and the retention policy applied. */
  private promoted(current: StoredKeyRing, staged: StoredKey): StoredKeyRing {
    const at = this.isoNow();
    const { maxPreviousKeys = Infinity, maxAgeMs = Infinity } = this.options.keyRetention;
    let previous = 0;
    const keys = current.keys.map((key): StoredKey => {
      if (key.id === staged.id) return { ...key, state: 'active', stateChangedAt: at };
      let state = key.state === 'active' ? 'decrypt-only' : key.state;
      if (state === 'decrypt-only') {
        previous++;
        if (previous > maxPreviousKeys || Date.parse(at) - Date.parse(key.createdAt) > maxAgeMs) state = 'retired';
      }
      return state === key.state ? key : { ...key, state, stateChangedAt: at };
    });
    return { ...current, revision: current.revision + 1, keys };
  }

  private changeState(id: string, state: KeyState, from: KeyState[], verb: string): Promise<KeyMetadata> {
    return this.enqueue(async () => {
      for (;;) {
        const current = this.currentStored();
        const key = current.keys.find((candidate) => candidate.id === id);
        if (!key) throw new KeyStateError(MESSAGES.KEY_UNKNOWN_ID(id));
        if (!from.includes(key.state)) throw new KeyStateError(MESSAGES.KEY_BAD_STATE(id, key.state, verb));
        const changed: StoredKey = { ...key, state, stateChangedAt: this.isoNow() };
        if (state === 'destroyed') delete changed.wrappedKey;
        const keys = current.keys.map((candidate) => (candidate.id === id ? changed : candidate));
        if (await this.save({ ...current, revision: current.revision + 1, keys }, current.revision)) {
          this.auditor.record(state === 'decrypt-only' ? 'key-decrypt-only' : (`key-${state}` as 'key-retired'), id, {
            revision: current.revision + 1,
          });
          return this.toMetadata(this.findKey(id)!);
        }
        await this.reload();
      }
    });
  }

  private async createFirstKey(): Promise<void> {
    // Generated first, so the first ring is one write with both keys in it.
    const keyPair = this.options.enableAsymmetric ? await this.newKeyPair() : undefined;
    const key = this.newStoredKey(1, 'active', 1);
    const ring: StoredKeyRing = {
      revision: 1,
      keys: [key.stored],
      masterKeyCheck: makeMasterKeyCheck(this.masterKey!),
      ...(this.masterKeySalt ? { masterKeySalt: toBase64(this.masterKeySalt) } : {}),
      ...(keyPair ? { keyPairs: [keyPair] } : {}),
    };
    if (await this.save(ring, 0, key)) {
      this.auditor.record('key-created', key.stored.id, { version: 1, revision: 1 });
      if (keyPair) this.auditor.record('key-pair-created', keyPair.kid, { alg: keyPair.alg, revision: 1 });
      return;
    }
    // Another instance created the first ring at the same moment: use that one.
    const stored = await this.options.keyStore.load();
    if (!stored) throw new KeyStoreUnavailableError(MESSAGES.STORE_UNAVAILABLE('creating the first key'));
    this.verifyMasterKey(stored);
    this.adopt(stored);
  }

  private newStoredKey(version: number, state: KeyState, revision: number): { stored: StoredKey; secret: Buffer } {
    const id = `k${version}-${randomBytes(KEY_ID_BYTES).toString('hex')}`;
    const secret = randomBytes(this.options.keySize);
    const now = this.isoNow();
    return {
      secret,
      stored: {
        id,
        version,
        createdAt: now,
        state,
        wrappedKey: wrapKey(this.masterKey!, id, secret),
        stateChangedAt: now,
        ...(state === 'staged' ? { stagedRevision: revision } : {}),
      },
    };
  }

  /** Adds an active key pair to a ring that has none (made before asymmetric encryption was enabled). */
  private async addFirstKeyPair(): Promise<void> {
    let fresh: StoredKeyPair | undefined;
    for (;;) {
      const current = this.currentStored();
      if (current.keyPairs?.some((pair) => pair.state === 'active')) return; // another instance added one
      if (!fresh) {
        fresh = await this.newKeyPair();
        continue;
      }
      const keyPairs = [fresh, ...(current.keyPairs ?? [])];
      if (await this.save({ ...current, revision: current.revision + 1, keyPairs }, current.revision)) {
        this.auditor.record('key-pair-created', fresh.kid, { alg: fresh.alg, revision: current.revision + 1 });
        return;
      }
      await this.reload();
    }
  }

  private newKeyPair(): Promise<StoredKeyPair> {
    const spec = keyPairSpecOf(this.options.asymmetricAlgorithm, this.options.rsaKeySize);
    return createStoredKeyPair(spec, this.masterKey!, 'active', this.isoNow());
  }

  /** `fresh` active, the old active decrypt-only, and the retention policy applied to previous pairs. */
  private keyPairsAfterRotation(pairs: readonly StoredKeyPair[], fresh: StoredKeyPair): StoredKeyPair[] {
    const at = this.isoNow();
    const { maxPreviousKeys = Infinity, maxAgeMs = Infinity } = this.options.keyRetention;
    let previous = 0;
    const older = [...pairs]
      .sort((a, b) => Date.parse(b.createdAt) - Date.parse(a.createdAt))
      .map((pair): StoredKeyPair => {
        let state: KeyPairState = pair.state === 'active' ? 'decrypt-only' : pair.state;
        if (state === 'decrypt-only') {
          previous++;
          if (previous > maxPreviousKeys || Date.parse(at) - Date.parse(pair.createdAt) > maxAgeMs) state = 'retired';
        }
        return state === pair.state ? pair : { ...pair, state, stateChangedAt: at };
      });
    return [fresh, ...older];
  }

  private activeStoredKeyPair(): StoredKeyPair | undefined {
    return this.stored?.keyPairs?.find((pair) => pair.state === 'active');
  }

  /** Active first, then decrypt-only pairs newest first. */
  private publishedKeyPairs(): StoredKeyPair[] {
    return (this.stored?.keyPairs ?? [])
      .filter((pair) => PUBLISHED_PAIR_STATES.has(pair.state))
      .sort((a, b) =>
        a.state === 'active' ? -1 : b.state === 'active' ? 1 : Date.parse(b.createdAt) - Date.parse(a.createdAt),
      );
  }

  private assertAsymmetric(): void {
    if (!this.options.enableAsymmetric) {
      throw new EncryptionConfigError(MESSAGES.FEATURE_DISABLED('Asymmetric encryption', 'enableAsymmetric'));
    }
  }

  private toKeyPairMetadata(pair: StoredKeyPair): KeyPairMetadata {
    const createdAt = new Date(pair.createdAt);
    return {
      kid: pair.kid,
      alg: pair.alg,
      ...(pair.rsaKeySize !== undefined ? { rsaKeySize: pair.rsaKeySize } : {}),
      ...(pair.crv !== undefined ? { crv: pair.crv } : {}),
      state: pair.state,
      createdAt,
      ageMs: this.now() - createdAt.getTime(),
    };
  }

  /** Compare-and-set write; adopts the ring on success. */
  private async save(ring: StoredKeyRing, expectedRevision: number, fresh?: { stored: StoredKey; secret: Buffer }): Promise<boolean> {
    const saved = await this.storeCall('write', () => this.options.keyStore.save(ring, expectedRevision));
    if (saved) this.adopt(ring, fresh);
    else fresh?.secret.fill(0);
    return saved;
  }

  private adopt(stored: StoredKeyRing, fresh?: { stored: StoredKey; secret: Buffer }): void {
    const keys = stored.keys.map((entry): ManagedKey => {
      const existing = this.ring?.find(entry.id);
      const usable = USABLE.has(entry.state);
      const dataKey = usable
        ? (existing?.dataKey ?? new DataKey(entry.id, fresh?.stored.id === entry.id ? fresh.secret : this.unwrap(entry)))
        : undefined;
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
    const retiredNow = this.ring?.all().filter((key) => key.dataKey && !ring.find(key.id)?.dataKey) ?? [];
    this.ring = ring;
    this.stored = stored;
    // Erase bytes of keys that may no longer be used; a retired key is unwrapped again if restored.
    for (const key of retiredNow) key.dataKey!.destroy();
    for (const kid of this.privateKeys.keys()) {
      const pair = stored.keyPairs?.find((candidate) => candidate.kid === kid);
      if (!pair || !PUBLISHED_PAIR_STATES.has(pair.state)) this.privateKeys.delete(kid);
    }
  }

  private unwrap(entry: StoredKey): Buffer {
    const secret = entry.wrappedKey && unwrapKey(this.masterKey!, entry.id, entry.wrappedKey);
    if (!secret) throw new MasterKeyMismatchError();
    return secret;
  }

  private async resolveMasterKey(stored: StoredKeyRing | undefined): Promise<Buffer> {
    const { masterKey, masterKeyPassphrase, keyStore } = this.options;
    let key: Buffer;
    if (masterKey) key = masterKey;
    else if (masterKeyPassphrase) {
      const salt = stored?.masterKeySalt ? fromBase64(stored.masterKeySalt) : undefined;
      const derived = await deriveMasterKey(masterKeyPassphrase, salt);
      this.masterKeySalt = derived.salt;
      key = derived.key;
    } else if (keyStore instanceof InMemoryKeyStore && !stored) {
      key = randomBytes(MASTER_KEY_SIZE); // nothing outlives the process, so nothing needs a lasting key
    } else {
      throw new EncryptionConfigError(MESSAGES.MASTER_KEY_REQUIRED);
    }
    this.masterKey = key;
    if (stored) this.verifyMasterKey(stored);
    return key;
  }

  /** Fails before anything is written when the master key can't open the stored ring. */
  private verifyMasterKey(stored: StoredKeyRing): void {
    const matches = stored.masterKeyCheck
      ? masterKeyMatches(this.masterKey!, stored.masterKeyCheck)
      : stored.keys.filter((key) => key.wrappedKey).every((key) => unwrapKey(this.masterKey!, key.id, key.wrappedKey!));
    if (!matches) throw new MasterKeyMismatchError();
  }

  /** Tells the store this instance is alive at this revision, for `ttlMs` (by default three beats). */
  private async heartbeat(ttlMs = this.options.keyPropagation.heartbeatIntervalMs * 3): Promise<void> {
    const store = this.options.keyStore;
    if (!store.heartbeat) return;
    const beat = { instanceId: this.instanceId, revision: this.revision, at: this.isoNow() };
    await this.tryStore('heartbeat', () => store.heartbeat!(beat, ttlMs));
  }

  /** A heartbeat that expires at once, so rotations elsewhere stop waiting for this instance. */
  private async signOff(): Promise<void> {
    if (this.stored) await this.heartbeat(0).catch(() => undefined);
  }

  private async flushUsage(): Promise<void> {
    const store = this.options.keyStore;
    if (!store.addUsage || !this.ring) return;
    const deltas = this.usage.pending(this.ring.all());
    if (!deltas.length) return;
    const done = await this.tryStore('usage flush', () => store.addUsage!(deltas).then(() => true));
    if (done) this.usage.markFlushed(deltas);
  }

  private async reloadQuietly(): Promise<void> {
    await this.reload().catch(() => undefined);
  }

  private rotationDue(maxAgeMs: number, now: number): boolean {
    return now - this.activeKey.createdAt.getTime() >= maxAgeMs || this.usageLimitReached();
  }

  private usageLimitReached(): boolean {
    const active = this.ring?.active;
    return !!active && this.usage.totals(active.id, active.usage).encryptions >= this.options.maxEncryptionsPerKey;
  }

  /**
   * Runs a store call and tracks reachability. Store failures become `KeyStoreUnavailableError`;
   * other library errors (a corrupt store, a wrong master key) propagate as they are.
   */
  private async storeCall<T>(operation: string, call: () => Promise<T>): Promise<T> {
    try {
      const result = await call();
      if (!this.status.reachable) this.auditor.record('store-recovered', undefined, { operation });
      this.status = { ...this.status, reachable: true, lastError: undefined, lastContactAt: this.isoNow() };
      return result;
    } catch (error) {
      if (error instanceof EncryptionError && !(error instanceof KeyStoreUnavailableError)) throw error;
      const code = String((error as NodeJS.ErrnoException).code ?? (error as Error).name ?? 'Error');
      if (this.status.reachable) this.auditor.record('store-error', undefined, { operation, code });
      this.status = { ...this.status, reachable: false, lastError: code };
      throw new KeyStoreUnavailableError(MESSAGES.STORE_UNAVAILABLE(operation), { cause: error });
    }
  }

  /** `storeCall` for background work: an unreachable store gives `undefined` (and is already recorded). */
  private tryStore<T>(operation: string, call: () => Promise<T>): Promise<T | undefined> {
    return this.storeCall(operation, call).catch((error) => {
      if (error instanceof KeyStoreUnavailableError) return undefined;
      throw error;
    });
  }

  private enqueue<T>(work: () => Promise<T>): Promise<T> {
    const run = this.writeQueue.then(work);
    this.writeQueue = run.catch(() => undefined);
    return run;
  }

  private currentStored(): StoredKeyRing {
    if (!this.stored) throw new EncryptionError('KEY_RING_NOT_READY', MESSAGES.KEY_RING_NOT_READY);
    return this.stored;
  }

  private loadedRing(): KeyRing {
    if (!this.ring) throw new EncryptionError('KEY_RING_NOT_READY', MESSAGES.KEY_RING_NOT_READY);
    return this.ring;
  }

  private now(): number {
    return this.options.clock.now();
  }

  private isoNow(): string {
    return new Date(this.now()).toISOString();
  }

  private toMetadata(key: ManagedKey): KeyMetadata {
    const totals = this.usage.totals(key.id, key.usage);
    return {
      id: key.id,
      version: key.version,
      state: key.state,
      createdAt: key.createdAt,
      ageMs: this.now() - key.createdAt.getTime(),
      encryptions: totals.encryptions,
      decryptions: totals.decryptions,
      lastUsedAt: totals.lastUsedAt ? new Date(totals.lastUsedAt) : undefined,
    };
  }
}

function parseMasterKey(value: Buffer | string): Buffer {
  const bytes = typeof value === 'string' ? fromBase64(value) : value;
  if (!bytes || bytes.length !== MASTER_KEY_SIZE) {
    throw new EncryptionInputError(`A master key must be ${MASTER_KEY_SIZE} bytes, as a Buffer or base64 text`);
  }
  return Buffer.from(bytes);
}

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
