import { createCipheriv, createDecipheriv, createSecretKey, randomBytes } from 'node:crypto';
import { createRequire } from 'node:module';
import { isDeepStrictEqual } from 'node:util';

import { decryptStringSync, encryptStringSync, parseKeySync } from '@47ng/cloak';
import { buildClient, CommitmentPolicy, RawAesKeyringNode, RawAesWrappingSuiteIdentifier } from '@aws-crypto/client-node';
import Cryptr from 'cryptr';
import { compactDecrypt,CompactEncrypt } from 'jose';
import type { EncryptionService } from 'nestjs-encryption';

import type { Payload } from './payloads.js';
import { encodeLikeAUser } from './payloads.js';

/** fernet (npm) ships no types: the two classes the benchmark uses. */
interface FernetModule {
  Secret: new (base64: string) => unknown;
  Token: new (options: { secret: unknown; token?: string; ttl: number }) => { encode(message: string): string; decode(): string };
}
const fernet = createRequire(import.meta.url)('fernet') as FernetModule;

/** One library's encrypt-then-decrypt of a payload, restoring the value a user put in. */
export interface Peer {
  name: string;
  /** Package and version, for the report. */
  package: string;
  roundTrip(): unknown;
}

const IV_SIZE = 12;
const TAG_SIZE = 16;

/**
 * How a user hands a payload to a library that only takes strings (cloak, fernet, cryptr): JSON as
 * its text, strings as they are, bytes as base64 (and back again after decryption).
 */
function asText(payload: Payload): { text: string; restore(text: string): unknown } {
  switch (payload.kind) {
    case 'string':
      return { text: payload.value as string, restore: (text) => text };
    case 'json':
      return { text: JSON.stringify(payload.value), restore: (text) => JSON.parse(text) };
    case 'bytes':
      return { text: (payload.value as Buffer).toString('base64'), restore: (text) => Buffer.from(text, 'base64') };
  }
}

function restoreBytes(payload: Payload): (bytes: Uint8Array) => unknown {
  const buffer = (bytes: Uint8Array) => Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  switch (payload.kind) {
    case 'string':
      return (bytes) => buffer(bytes).toString('utf8');
    case 'json':
      return (bytes) => JSON.parse(buffer(bytes).toString('utf8'));
    case 'bytes':
      return (bytes) => buffer(bytes);
  }
}

/** The hand-written baseline: AES-256-GCM, a fresh 12-byte IV, `iv || ciphertext || tag`. */
export function bareNodeCrypto(payload: Payload): Peer {
  const key = randomBytes(32);
  const restore = restoreBytes(payload);
  return {
    name: 'node:crypto AES-256-GCM (bare)',
    package: `node ${process.versions.node}`,
    roundTrip() {
      const plaintext = encodeLikeAUser(payload);
      const iv = randomBytes(IV_SIZE);
      const cipher = createCipheriv('aes-256-gcm', key, iv);
      const sealed = Buffer.concat([iv, cipher.update(plaintext), cipher.final(), cipher.getAuthTag()]);
      const decipher = createDecipheriv('aes-256-gcm', key, sealed.subarray(0, IV_SIZE));
      decipher.setAuthTag(sealed.subarray(sealed.length - TAG_SIZE));
      const opened = decipher.update(sealed.subarray(IV_SIZE, sealed.length - TAG_SIZE));
      decipher.final();
      return restore(opened);
    },
  };
}

export function nestjsEncryption(name: string, service: EncryptionService, payload: Payload): Peer {
  const value = payload.value as never;
  return {
    name,
    package: 'nestjs-encryption (this repository)',
    roundTrip: async () => service.decrypt(await service.encrypt(value)),
  };
}

/** @aws-crypto/client-node with a raw AES keyring and its default (committing, ECDSA-signed) suite. */
export function awsEncryptionSdk(payload: Payload, version: string): Peer {
  const client = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
  const keyring = new RawAesKeyringNode({
    keyName: 'bench-key',
    keyNamespace: 'bench',
    unencryptedMasterKey: randomBytes(32),
    wrappingSuite: RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING,
  });
  const restore = restoreBytes(payload);
  return {
    name: '@aws-crypto/client-node (raw AES keyring)',
    package: `@aws-crypto/client-node ${version}`,
    async roundTrip() {
      const { result } = await client.encrypt(keyring, encodeLikeAUser(payload));
      const { plaintext } = await client.decrypt(keyring, result);
      return restore(plaintext);
    },
  };
}

/** @47ng/cloak's synchronous API (node:crypto) with a parsed key: its fastest path. */
export function cloak(payload: Payload, version: string): Peer {
  const key = parseKeySync(generateKeySyncText());
  const { text, restore } = asText(payload);
  return {
    name: '@47ng/cloak',
    package: `@47ng/cloak ${version}`,
    roundTrip: () => restore(decryptStringSync(encryptStringSync(text, key), key)),
  };
}

/** What cloak's (async) `generateKey()` makes: `k1.aesgcm256.<base64url of 32 random bytes>`. */
function generateKeySyncText(): string {
  return `k1.aesgcm256.${randomBytes(32).toString('base64url')}`;
}

/** fernet (npm): AES-128-CBC + HMAC-SHA256 in pure JavaScript (crypto-js). */
export function fernetJs(payload: Payload, version: string): Peer {
  const secret = new fernet.Secret(randomBytes(32).toString('base64'));
  const { text, restore } = asText(payload);
  return {
    name: 'fernet',
    package: `fernet ${version}`,
    roundTrip() {
      const token = new fernet.Token({ secret, ttl: 0 }).encode(text);
      return restore(new fernet.Token({ secret, token, ttl: 0 }).decode());
    },
  };
}

/** cryptr with its defaults: AES-256-GCM with a PBKDF2-SHA512 (100,000 iterations) key per message. */
export function cryptr(payload: Payload, version: string): Peer {
  const instance = new Cryptr(randomBytes(32).toString('hex'));
  const { text, restore } = asText(payload);
  return {
    name: 'cryptr',
    package: `cryptr ${version}`,
    roundTrip: () => restore(instance.decrypt(instance.encrypt(text))),
  };
}

/** jose compact JWE, `dir` + `A256GCM`, with a KeyObject. */
export function joseDir(payload: Payload, version: string): Peer {
  const key = createSecretKey(randomBytes(32));
  const restore = restoreBytes(payload);
  return {
    name: 'jose (dir + A256GCM)',
    package: `jose ${version}`,
    async roundTrip() {
      const jwe = await new CompactEncrypt(encodeLikeAUser(payload)).setProtectedHeader({ alg: 'dir', enc: 'A256GCM' }).encrypt(key);
      return restore((await compactDecrypt(jwe, key)).plaintext);
    },
  };
}

/** A contender that doesn't round-trip correctly would be measuring the wrong thing. */
export async function checkPeer(peer: Peer, payload: Payload): Promise<void> {
  const output = await peer.roundTrip();
  if (!isDeepStrictEqual(output, payload.value)) throw new Error(`${peer.name} did not round-trip ${payload.name}`);
}
