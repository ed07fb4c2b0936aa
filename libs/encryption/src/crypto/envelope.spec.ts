import { randomBytes } from 'node:crypto';

import fc from 'fast-check';

import type { AeadCipher } from './aead.js';
import { AEAD_CIPHERS, AES_256_CBC_HMAC_SHA256, AES_256_GCM } from './aead.js';
import { COMMITMENT_SIZE } from './data-key.js';
import type { EnvelopeHeader } from './envelope.js';
import {
  CompressionCodec,
  FORMAT_VERSION,
  parseEnvelope,
  PayloadType,
  serializeEnvelope,
  serializeHeader,
} from './envelope.js';

function header(overrides: Partial<EnvelopeHeader> = {}): EnvelopeHeader {
  const cipher = overrides.cipher ?? AES_256_GCM;
  return {
    cipher,
    payloadType: PayloadType.String,
    codec: CompressionCodec.None,
    keyId: 'k1-0123456789abcdef',
    commitment: randomBytes(COMMITMENT_SIZE),
    nonce: randomBytes(cipher.nonceSize),
    ...overrides,
  };
}

function envelope(h: EnvelopeHeader, ciphertext = randomBytes(20), tag = randomBytes(h.cipher.tagSize)): Buffer {
  return serializeEnvelope(serializeHeader(h), ciphertext, tag);
}

describe('envelope v1', () => {
  test('the header layout is version, algorithm, flags, key id length, key id, commitment, nonce', () => {
    const h = header({ keyId: 'abc', payloadType: PayloadType.Json, codec: CompressionCodec.Brotli });
    const bytes = serializeHeader(h);
    expect(bytes[0]).toBe(FORMAT_VERSION);
    expect(FORMAT_VERSION).toBe(1);
    expect(bytes[1]).toBe(AES_256_GCM.id);
    expect(bytes[2]).toBe(PayloadType.Json | (CompressionCodec.Brotli << 2));
    expect(bytes[3]).toBe(3);
    expect(bytes.subarray(4, 7).toString()).toBe('abc');
    expect(bytes.subarray(7, 7 + 32)).toEqual(h.commitment);
    expect(bytes.subarray(39)).toEqual(h.nonce);
    expect(bytes).toHaveLength(4 + 3 + 32 + 12);
  });

  describe.each(AEAD_CIPHERS.map((cipher) => [cipher.name, cipher] as [string, AeadCipher]))('%s', (_name, cipher) => {
    test.each([
      [PayloadType.Bytes, CompressionCodec.None],
      [PayloadType.String, CompressionCodec.Gzip],
      [PayloadType.Json, CompressionCodec.Brotli],
    ])('parses what it serialises (payload type %i, codec %i)', (payloadType, codec) => {
      const h = header({ cipher, payloadType, codec, keyId: 'ключ-🔑' });
      const ciphertext = randomBytes(33);
      const tag = randomBytes(cipher.tagSize);
      const bytes = envelope(h, ciphertext, tag);
      const parsed = parseEnvelope(bytes)!;
      expect(parsed).toBeDefined();
      expect(parsed.cipher).toBe(cipher);
      expect(parsed).toMatchObject({ payloadType, codec, keyId: 'ключ-🔑' });
      expect(parsed.commitment).toEqual(h.commitment);
      expect(parsed.nonce).toEqual(h.nonce);
      expect(parsed.ciphertext).toEqual(ciphertext);
      expect(parsed.tag).toEqual(tag);
      expect(parsed.header).toEqual(serializeHeader(h));
    });

    test('an empty ciphertext is allowed (the tag is still required)', () => {
      const h = header({ cipher });
      const parsed = parseEnvelope(envelope(h, Buffer.alloc(0)))!;
      expect(parsed.ciphertext).toHaveLength(0);
      expect(parseEnvelope(serializeHeader(h))).toBeUndefined();
      const oneShort = envelope(h, Buffer.alloc(0)).subarray(0, -1);
      expect(parseEnvelope(oneShort)).toBeUndefined();
    });
  });

  test.each([1, 255])('key ids of %i bytes are accepted', (length) => {
    const keyId = 'k'.repeat(length);
    expect(parseEnvelope(envelope(header({ keyId })))!.keyId).toBe(keyId);
  });

  test.each([
    ['empty', ''],
    ['256 bytes', 'k'.repeat(256)],
    ['over 255 bytes once UTF-8 encoded', 'é'.repeat(128)],
  ])('a key id that is %s cannot be serialised', (_name, keyId) => {
    expect(() => serializeHeader(header({ keyId }))).toThrow(RangeError);
  });

  describe('parseEnvelope rejects (returns undefined for) any structural problem', () => {
    const valid = envelope(header({ keyId: 'key' }));
    const withByte = (index: number, value: number) => {
      const copy = Buffer.from(valid);
      copy[index] = value;
      return copy;
    };

    test('the valid envelope used below parses', () => {
      expect(parseEnvelope(valid)).toBeDefined();
    });

    test.each([
      ['an empty input', Buffer.alloc(0)],
      ['a 3-byte input', valid.subarray(0, 3)],
      ['format version 0', withByte(0, 0)],
      ['format version 2', withByte(0, 2)],
      ['algorithm id 0', withByte(1, 0)],
      ['algorithm id 4', withByte(1, 4)],
      ['algorithm id 255', withByte(1, 255)],
      ['payload type 3', withByte(2, 0b0011)],
      ['codec 3', withByte(2, 0b1100)],
      ['a reserved flag bit', withByte(2, 0b0001_0000)],
      ['the top flag bit', withByte(2, 0b1000_0000)],
      ['key id length 0', withByte(3, 0)],
      ['a key id length past the end', withByte(3, 255)],
      ['input shorter than header + tag', valid.subarray(0, 4 + 3 + 32 + 12 + 15)],
      ['a key id that is invalid UTF-8', Buffer.concat([valid.subarray(0, 4), Buffer.from([0xff, 0xfe, 0xfd]), valid.subarray(7)])],
      ['an overlong UTF-8 key id', Buffer.concat([valid.subarray(0, 3), Buffer.from([2, 0xc0, 0xaf]), valid.subarray(6)])],
      ['a key id with a lone surrogate encoding', Buffer.concat([valid.subarray(0, 4), Buffer.from([0xed, 0xa0, 0x80]), valid.subarray(7)])],
    ])('%s', (_name, bytes) => {
      expect(parseEnvelope(bytes)).toBeUndefined();
    });

    test('a CBC envelope needs its 16-byte IV and 32-byte tag', () => {
      const cbc = envelope(header({ cipher: AES_256_CBC_HMAC_SHA256, keyId: 'k' }), Buffer.alloc(0));
      expect(cbc).toHaveLength(4 + 1 + 32 + 16 + 32);
      expect(parseEnvelope(cbc)).toBeDefined();
      expect(parseEnvelope(cbc.subarray(0, -1))).toBeUndefined();
    });
  });

  describe('properties', () => {
    test('never throws on arbitrary bytes', () => {
      fc.assert(
        fc.property(fc.uint8Array({ maxLength: 300 }), (bytes) => {
          parseEnvelope(Buffer.from(bytes));
        }),
        { numRuns: 2000 },
      );
    });

    test('never throws on arbitrary bytes behind a plausible prefix, and whatever it accepts re-serialises to the same bytes', () => {
      const keyIdBytes = fc.oneof(
        fc.string({ unit: 'grapheme-ascii', minLength: 1, maxLength: 30 }).map((id) => Buffer.from(id)),
        fc.string({ unit: 'grapheme', minLength: 1, maxLength: 10 }).map((id) => Buffer.from(id)),
        fc.uint8Array({ minLength: 0, maxLength: 30 }).map((b) => Buffer.from(b)),
      );
      const plausible = fc
        .tuple(
          fc.oneof({ arbitrary: fc.constant(1), weight: 4 }, fc.integer({ min: 0, max: 255 })),
          fc.oneof({ arbitrary: fc.integer({ min: 1, max: 3 }), weight: 4 }, fc.integer({ min: 0, max: 255 })),
          fc.oneof(
            { arbitrary: fc.tuple(fc.nat(2), fc.nat(2)).map(([type, codec]) => type | (codec << 2)), weight: 4 },
            fc.integer({ min: 0, max: 255 }),
          ),
          keyIdBytes,
          fc.option(fc.integer({ min: 0, max: 255 }), { freq: 5 }),
          fc.oneof(fc.uint8Array({ maxLength: 200 }), fc.uint8Array({ minLength: 60, maxLength: 200 })),
        )
        .map(([version, algorithm, flags, keyId, lengthOverride, rest]) =>
          Buffer.concat([Buffer.from([version, algorithm, flags, lengthOverride ?? keyId.length]), keyId, rest]),
        );
      let accepted = 0;
      fc.assert(
        fc.property(plausible, (bytes) => {
          const parsed = parseEnvelope(bytes);
          if (!parsed) return;
          accepted++;
          // One parser, one serialiser: the parse is exact and lossless.
          expect(serializeEnvelope(serializeHeader(parsed), parsed.ciphertext, parsed.tag)).toEqual(bytes);
          expect(serializeHeader(parsed)).toEqual(parsed.header);
          expect(parsed.commitment).toHaveLength(COMMITMENT_SIZE);
          expect(parsed.nonce).toHaveLength(parsed.cipher.nonceSize);
          expect(parsed.tag).toHaveLength(parsed.cipher.tagSize);
        }),
        { numRuns: 3000 },
      );
      expect(accepted).toBeGreaterThan(50);
    });

    test('serialise then parse is the identity for any header and body', () => {
      const headers = fc.record({
        cipher: fc.constantFrom(...AEAD_CIPHERS),
        payloadType: fc.constantFrom(PayloadType.Bytes, PayloadType.String, PayloadType.Json),
        codec: fc.constantFrom(CompressionCodec.None, CompressionCodec.Gzip, CompressionCodec.Brotli),
        keyId: fc.string({ unit: 'grapheme', minLength: 1, maxLength: 40 }),
        commitment: fc.uint8Array({ minLength: 32, maxLength: 32 }).map((b) => Buffer.from(b)),
      });
      fc.assert(
        fc.property(headers, fc.uint8Array({ maxLength: 100 }), (h, body) => {
          const full: EnvelopeHeader = { ...h, nonce: randomBytes(h.cipher.nonceSize) };
          const tag = randomBytes(h.cipher.tagSize);
          const parsed = parseEnvelope(serializeEnvelope(serializeHeader(full), Buffer.from(body), tag))!;
          expect(parsed).toBeDefined();
          expect(parsed.cipher).toBe(h.cipher);
          expect(parsed).toMatchObject({ payloadType: h.payloadType, codec: h.codec, keyId: h.keyId });
          expect(parsed.ciphertext).toEqual(Buffer.from(body));
          expect(parsed.tag).toEqual(tag);
        }),
        { numRuns: 300 },
      );
    });
  });
});
