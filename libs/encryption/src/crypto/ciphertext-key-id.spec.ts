import { randomBytes } from 'node:crypto';

import fc from 'fast-check';

import { AEAD_CIPHERS } from './aead.js';
import { ciphertextKeyId } from './ciphertext-key-id.js';
import { COMMITMENT_SIZE } from './data-key.js';
import { CompressionCodec, PayloadType, serializeEnvelope, serializeHeader } from './envelope.js';

function envelope(keyId: string, cipher = AEAD_CIPHERS[0]): Buffer {
  const header = serializeHeader({
    cipher,
    payloadType: PayloadType.Json,
    codec: CompressionCodec.None,
    keyId,
    commitment: randomBytes(COMMITMENT_SIZE),
    nonce: randomBytes(cipher.nonceSize),
  });
  return serializeEnvelope(header, randomBytes(7), randomBytes(cipher.tagSize));
}

describe('ciphertextKeyId', () => {
  test.each(AEAD_CIPHERS.map((cipher) => [cipher.name, cipher]))(
    'reads the key id of a %s envelope, binary or text',
    (_, cipher) => {
      const bytes = envelope('k7-00112233aabbccdd', cipher);
      expect(ciphertextKeyId(bytes)).toBe('k7-00112233aabbccdd');
      expect(ciphertextKeyId(new Uint8Array(bytes))).toBe('k7-00112233aabbccdd');
      expect(ciphertextKeyId(bytes.toString('base64url'))).toBe('k7-00112233aabbccdd');
    },
  );

  test('any UTF-8 key id of 1 to 255 bytes comes back unchanged', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 60 }).filter((id) => Buffer.byteLength(id) <= 255),
        (keyId) => ciphertextKeyId(envelope(keyId).toString('base64url')) === keyId,
      ),
      { numRuns: 200 },
    );
  });

  test('anything that is not a well-formed envelope gives undefined', () => {
    const valid = envelope('k1-aa');
    expect(ciphertextKeyId('')).toBeUndefined();
    expect(ciphertextKeyId('not a ciphertext!')).toBeUndefined();
    expect(ciphertextKeyId(`${valid.toString('base64url')}=`)).toBeUndefined(); // padded: not canonical base64url
    expect(ciphertextKeyId(valid.subarray(0, 40))).toBeUndefined(); // shorter than header + tag
    expect(ciphertextKeyId(Buffer.concat([Buffer.from([2]), valid.subarray(1)]))).toBeUndefined(); // unknown version
    expect(ciphertextKeyId(undefined as unknown as string)).toBeUndefined();
    expect(ciphertextKeyId(42 as unknown as string)).toBeUndefined();
  });
});
