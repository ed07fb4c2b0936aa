import { randomBytes } from 'node:crypto';

import type { EncryptionService, KeyStore, StoredKey, StoredKeyRing } from 'nestjs-encryption';

// Internal, imported by path: wrapping keys directly builds a 10,000-key ring in well under a second,
// where 10,000 rotate() calls would rewrite the whole ring 10,000 times.
import { wrapKey } from '../../libs/encryption/src/crypto/key-wrap.js';
import type { EncryptionApp } from '../encryption-app.js';
import { createEncryptionApp } from '../encryption-app.js';
import { measure } from '../harness.js';
import type { Suite } from '../suite.js';
import { formatOps, formatRatio, formatSpread, target } from '../suite.js';

const RETAINED_KEYS = 10_000;
const TARGET = 0.95;
const DAY_MS = 86_400_000;
const PLAINTEXT = 'Session note: the customer asked to move the delivery of order 4471 to Friday morning, before 10am.';

/**
 * Decryption with a ring of one key against a ring that also retains 10,000 previous keys, both for
 * a ciphertext of the active key and of the oldest retained key. Lookup is by key id, so the ring
 * size should not matter; this checks it.
 */
export const keyRingSuite: Suite = {
  id: 'key-ring',
  title: `Key ring: decryption with ${RETAINED_KEYS.toLocaleString('en-US')} retained keys vs one key`,
  async run({ measure: options, log }) {
    log(`key ring: wrapping ${RETAINED_KEYS + 1} keys`);
    const masterKey = randomBytes(32);
    const keys = Array.from({ length: RETAINED_KEYS + 1 }, (_, i) => storedKey(masterKey, i + 1, RETAINED_KEYS + 1));
    const oldest = keys[0];

    const apps: EncryptionApp[] = [];
    try {
      const booting = Date.now();
      const large = await boot(apps, masterKey, keys);
      const bootMs = Date.now() - booting;
      // The one-key ring holds the oldest key as its active key, so both rings can open its ciphertext.
      const single = await boot(apps, masterKey, [{ ...oldest, state: 'active' }]);
      const oldKeyEnvelope = await single.encrypt(PLAINTEXT);
      const activeKeyEnvelope = await large.encrypt(PLAINTEXT);

      log('key ring: decrypting');
      const decrypt = (service: EncryptionService, envelope: Buffer) => () => service.decrypt(envelope);
      const contenders = [
        { name: '1 key, its key', run: decrypt(single, oldKeyEnvelope) },
        {
          name: `${(RETAINED_KEYS + 1).toLocaleString('en-US')} keys, oldest retained key`,
          run: decrypt(large, oldKeyEnvelope),
        },
        {
          name: `${(RETAINED_KEYS + 1).toLocaleString('en-US')} keys, active key`,
          run: decrypt(large, activeKeyEnvelope),
        },
      ];
      for (const contender of contenders) {
        if ((await contender.run()) !== PLAINTEXT) throw new Error(`${contender.name}: wrong plaintext`);
      }
      const measured = await measure(contenders, options);
      const rows = measured.results.map((result, index) => [
        result.name,
        formatOps(result.opsPerSec),
        formatOps(result.opsPerCpuSec),
        formatSpread(result.spread('cpu')),
        index === 0 ? '1.00' : withRange(measured.ratio(index, 0, 'cpu'), measured.ratioRange(index, 0, 'cpu')),
        formatRatio(index === 0 ? 1 : measured.ratio(index, 0, 'wall')),
      ]);
      return {
        description: [
          `Two rings built from the same master key: one holding a single key, and one holding ${RETAINED_KEYS.toLocaleString('en-US')} ` +
            'decrypt-only keys plus an active key (loaded from a `KeyStore` preloaded with wrapped keys, as a long-lived ' +
            'deployment would load them). One operation is `await service.decrypt(envelope)` of a 100-byte string ' +
            '(default configuration; too small to be compressed). Both rings live in this one process, so the cost of ' +
            'collecting garbage in the larger heap falls on both alike; what differs is the lookup and the key it finds.',
          `Booting the ${(RETAINED_KEYS + 1).toLocaleString('en-US')}-key ring (unwrapping every key and deriving its ` +
            `commitment) took ${bootMs.toLocaleString('en-US')} ms.`,
        ],
        tables: [
          {
            headers: [
              'Ring, ciphertext made with',
              'ops/s',
              'ops/CPU-s',
              'spread',
              'vs 1 key (CPU), middle half of rounds',
              'vs 1 key (wall)',
            ],
            rows,
          },
        ],
        targets: [1, 2].map((index) =>
          target(
            `Decryption with ${measured.results[index].name} / with 1 key (middle half of rounds ${range(measured.ratioRange(index, 0, 'cpu'))})`,
            measured.ratio(index, 0, 'cpu'),
            TARGET,
          ),
        ),
      };
    } finally {
      for (const { app } of apps) await app.close();
    }
  },
};

function range([low, high]: [number, number]): string {
  return `${formatRatio(low)}–${formatRatio(high)}`;
}

function withRange(ratio: number, quartiles: [number, number]): string {
  return `${formatRatio(ratio)} (${range(quartiles)})`;
}

async function boot(apps: EncryptionApp[], masterKey: Buffer, keys: StoredKey[]): Promise<EncryptionService> {
  const app = await createEncryptionApp({ masterKey, keyStore: new PreloadedKeyStore({ revision: 1, keys }) });
  apps.push(app);
  return app.service;
}

/** Version `version` of `count`; the newest is active, one key per day going back. */
function storedKey(masterKey: Buffer, version: number, count: number): StoredKey {
  const id = `k${version}-${randomBytes(8).toString('hex')}`;
  return {
    id,
    version,
    createdAt: new Date(Date.now() - (count - version) * DAY_MS).toISOString(),
    state: version === count ? 'active' : 'decrypt-only',
    wrappedKey: wrapKey(masterKey, id, randomBytes(32)),
  };
}

/** A store that already holds a ring, with the compare-and-set `save` the contract asks for. */
class PreloadedKeyStore implements KeyStore {
  constructor(private ring: StoredKeyRing) {}

  async load(): Promise<StoredKeyRing> {
    return this.ring;
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    if (this.ring.revision !== expectedRevision) return false;
    this.ring = ring;
    return true;
  }
}
