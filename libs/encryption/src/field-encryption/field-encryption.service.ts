import { Injectable, StreamableFile } from '@nestjs/common';

import type { Plaintext } from '../crypto/plaintext-codec.js';
import { EncryptionService } from '../encryption.service.js';
import { DecryptionError, EncryptionInputError } from '../errors/encryption.errors.js';
import type { EncryptedBodyOptions, EncryptedFieldOptions } from '../interfaces/encrypted-field-options.interface.js';
import type { UntypedPayloadAs } from '../interfaces/encryption-call-options.interface.js';
import { EncryptedFieldError } from './encrypted-field.error.js';
import type { ClassRef } from './encrypted-fields.metadata.js';
import {
  designTypeOf,
  encryptedFieldsOf,
  isUserClass,
  nestedTypeOf,
  runtimeClassOf,
} from './encrypted-fields.metadata.js';
import { FIELD_MESSAGES } from './field-encryption.messages.js';

/** Default longest text-form ciphertext of one request field, in characters. */
export const DEFAULT_MAX_FIELD_LENGTH = 65_536;
/** Default longest text-form ciphertext of a whole encrypted body, in characters. */
export const DEFAULT_MAX_BODY_LENGTH = 1_048_576;
/** Deeper values are refused rather than walked: the walk must not be a way to exhaust the stack. */
const MAX_DEPTH = 64;

/** The field a whole-body envelope carries its ciphertext in. */
export const ENCRYPTED_BODY_FIELD = 'ciphertext';

export interface DecryptFieldsOptions {
  /** Longest ciphertext accepted for a field that sets no `maxLength` of its own. @default 65536 */
  maxLength?: number;
  /** Dotted path of `value` itself, prefixed to the field names in errors. @default '' */
  path?: string;
}

/** What type a decrypted field must have, from its `design:type`; `undefined` accepts any JSON value. */
type Expected = 'a string' | 'a number' | 'a boolean' | 'an array' | 'an object' | 'bytes' | undefined;

interface EncryptJob {
  target: object;
  key: string;
  plaintext: unknown;
  options: EncryptedFieldOptions;
}

interface DecryptJob {
  target: Record<string, unknown>;
  key: string;
  field: string;
  ciphertext: string;
  options: EncryptedFieldOptions;
  expected: Expected;
}

/**
 * Encrypts and decrypts the `@Encrypted()` properties of objects, wherever they sit in a graph of
 * objects and arrays. The interceptors use it for HTTP; use it directly for anything else (e.g. a
 * queue message or an entity before it is stored).
 */
@Injectable()
export class FieldEncryptionService {
  constructor(private readonly encryption: EncryptionService) {}

  /**
   * Returns `value` with each `@Encrypted()` property of each class instance in it replaced by its
   * ciphertext in the text form. Arrays, plain objects and instances are walked; an object that
   * changes is copied with the same prototype (so class-transformer still sees its class), anything
   * else is returned as it is, and `value` itself is never modified.
   */
  async encryptFields<T>(value: T): Promise<T> {
    const jobs: EncryptJob[] = [];
    const result = this.rewrite(value, jobs, new Set(), 0) as T;
    await Promise.all(
      jobs.map(async ({ target, key, plaintext, options }) => {
        const ciphertext = await this.encryption.encryptToString(plaintext as Plaintext, {
          context: options.context,
          compress: options.compress,
        });
        setOwn(target, key, ciphertext);
      }),
    );
    return result;
  }

  /**
   * Decrypts, in place, the `@Encrypted()` properties of `value` read as an instance of `type` (by
   * default its own class), and of the nested objects its `@Type()`/`design:type` metadata leads to.
   * Each must hold a ciphertext string (`null`/`undefined` are left alone) that decrypts to the
   * property's declared type. Throws `EncryptedFieldError` naming the first field, in document
   * order, that can't be accepted; values are never part of an error.
   */
  async decryptFields<T>(value: T, type?: ClassRef, options: DecryptFieldsOptions = {}): Promise<T> {
    if (typeof value !== 'object' || value === null) return value;
    const jobs: DecryptJob[] = [];
    const maxLength = options.maxLength ?? DEFAULT_MAX_FIELD_LENGTH;
    this.collect(type ?? runtimeClassOf(value), value, options.path ?? '', jobs, maxLength, 0);
    const results = await Promise.allSettled(jobs.map((job) => this.decryptJob(job)));
    const failure = results.find((result) => result.status === 'rejected');
    if (failure) throw failure.reason;
    return value;
  }

  /**
   * Decrypts a whole-body envelope, the JSON object `{ "ciphertext": "<text form>" }`, to the value it
   * carries. Errors name the field `body`.
   */
  async decryptBody(body: unknown, options: EncryptedBodyOptions = {}): Promise<unknown> {
    const field = 'body';
    const ciphertext = isPlainRecord(body) && Object.keys(body).length === 1 ? body[ENCRYPTED_BODY_FIELD] : undefined;
    if (typeof ciphertext !== 'string') throw EncryptedFieldError.notACiphertext(field);
    const limit = options.maxLength ?? DEFAULT_MAX_BODY_LENGTH;
    if (ciphertext.length > limit) throw EncryptedFieldError.tooLong(field, limit);
    return this.decryptChecked(ciphertext, field, options.context, undefined);
  }

  private rewrite(value: unknown, jobs: EncryptJob[], ancestors: Set<object>, depth: number): unknown {
    if (!isWalkable(value) || ancestors.has(value)) return value;
    if (depth > MAX_DEPTH) throw new EncryptionInputError(FIELD_MESSAGES.NESTING_TOO_DEEP(MAX_DEPTH));
    ancestors.add(value);
    try {
      if (Array.isArray(value)) {
        let copy: unknown[] | undefined;
        value.forEach((item: unknown, index) => {
          const next = this.rewrite(item, jobs, ancestors, depth + 1);
          if (next !== item) (copy ??= [...value])[index] = next;
        });
        return copy ?? value;
      }
      const source = value as Record<string, unknown>;
      const fields = encryptedFieldsOf(runtimeClassOf(source));
      let copy: object | undefined;
      const writable = () => (copy ??= copyOf(source));
      for (const [key, options] of fields) {
        if (!Object.hasOwn(source, key) || source[key] === undefined || source[key] === null) continue;
        jobs.push({ target: writable(), key, plaintext: source[key], options });
      }
      for (const key of Object.keys(source)) {
        if (fields.has(key)) continue;
        const item = source[key];
        const next = this.rewrite(item, jobs, ancestors, depth + 1);
        if (next !== item) setOwn(writable(), key, next);
      }
      return copy ?? value;
    } finally {
      ancestors.delete(value);
    }
  }

  private collect(
    type: ClassRef | undefined,
    value: object,
    path: string,
    jobs: DecryptJob[],
    maxLength: number,
    depth: number,
  ): void {
    if (!type || Array.isArray(value)) return;
    if (depth > MAX_DEPTH) {
      throw new EncryptedFieldError(path || 'body', 'INVALID_TYPE', FIELD_MESSAGES.NESTING_TOO_DEEP(MAX_DEPTH));
    }
    const record = value as Record<string, unknown>;
    const fields = encryptedFieldsOf(type);
    for (const [key, options] of fields) {
      const ciphertext = Object.hasOwn(record, key) ? record[key] : undefined;
      if (ciphertext === undefined || ciphertext === null) continue;
      const field = join(path, key);
      if (typeof ciphertext !== 'string') throw EncryptedFieldError.notACiphertext(field);
      const limit = options.maxLength ?? maxLength;
      if (ciphertext.length > limit) throw EncryptedFieldError.tooLong(field, limit);
      jobs.push({ target: record, key, field, ciphertext, options, expected: expectedOf(designTypeOf(type, key)) });
    }
    for (const key of Object.keys(record)) {
      const item = record[key];
      if (fields.has(key) || typeof item !== 'object' || item === null) continue;
      const items: unknown[] = Array.isArray(item) ? item : [item];
      items.forEach((element, index) => {
        if (typeof element !== 'object' || element === null) return;
        const elementType = runtimeClassOf(element) ?? nestedTypeOf(type, key, record, element);
        const elementPath = Array.isArray(item) ? join(path, `${key}.${index}`) : join(path, key);
        this.collect(elementType, element, elementPath, jobs, maxLength, depth + 1);
      });
    }
  }

  private async decryptJob(job: DecryptJob): Promise<void> {
    job.target[job.key] = await this.decryptChecked(job.ciphertext, job.field, job.options.context, job.expected);
  }

  private async decryptChecked(
    ciphertext: string,
    field: string,
    context: EncryptedFieldOptions['context'],
    expected: Expected,
  ): Promise<unknown> {
    let plaintext: Plaintext;
    try {
      plaintext = await this.encryption.decrypt(ciphertext, { context, as: untypedAs(expected) });
    } catch (error) {
      // Anything but a refused ciphertext (e.g. a key ring that isn't loaded) is the server's fault.
      if (error instanceof DecryptionError) throw EncryptedFieldError.fromDecryptionFailure(field, error);
      throw error;
    }
    if (!hasExpectedType(plaintext, expected)) throw EncryptedFieldError.wrongType(field, expected ?? 'a JSON value');
    return plaintext;
  }
}

/** How an untyped payload (a Fernet token, a JWE without `cty`) is read for a field of this type. */
function untypedAs(expected: Expected): UntypedPayloadAs {
  return expected === 'bytes' ? 'buffer' : expected === 'a string' ? 'string' : 'json';
}

function join(path: string, key: string): string {
  return path ? `${path}.${key}` : key;
}

function expectedOf(designType: unknown): Expected {
  if (designType === String) return 'a string';
  if (designType === Number) return 'a number';
  if (designType === Boolean) return 'a boolean';
  if (designType === Array) return 'an array';
  if (designType === Buffer || designType === Uint8Array) return 'bytes';
  if (isUserClass(designType)) return 'an object';
  return undefined;
}

function hasExpectedType(value: Plaintext, expected: Expected): boolean {
  const bytes = value instanceof Uint8Array;
  switch (expected) {
    case 'a string':
      return typeof value === 'string';
    case 'a number':
      return typeof value === 'number';
    case 'a boolean':
      return typeof value === 'boolean';
    case 'an array':
      return Array.isArray(value);
    case 'an object':
      return typeof value === 'object' && value !== null && !Array.isArray(value) && !bytes;
    case 'bytes':
      return bytes;
    case undefined:
      // A request body holds JSON: raw bytes have no place in it unless the property says so.
      return !bytes;
  }
}

function isPlainRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null) return false;
  const prototype = Object.getPrototypeOf(value) as unknown;
  return prototype === Object.prototype || prototype === null;
}

/** Objects the response walk goes into: arrays, plain objects and class instances, but no built-ins or streams. */
function isWalkable(value: unknown): value is object {
  if (typeof value !== 'object' || value === null) return false;
  if (Array.isArray(value)) return true;
  if (
    ArrayBuffer.isView(value) ||
    value instanceof ArrayBuffer ||
    value instanceof Date ||
    value instanceof RegExp ||
    value instanceof Map ||
    value instanceof Set ||
    value instanceof WeakMap ||
    value instanceof WeakSet ||
    value instanceof Promise ||
    value instanceof Error ||
    value instanceof StreamableFile
  ) {
    return false;
  }
  const candidate = value as { pipe?: unknown; [Symbol.asyncIterator]?: unknown };
  return typeof candidate.pipe !== 'function' && typeof candidate[Symbol.asyncIterator] !== 'function';
}

/**
 * A same-prototype copy whose own properties can all be redefined, even if the original is frozen.
 * The usual response object (only enumerable string keys) is copied key by key, by assignment where
 * that is the same as defining the property (about 4x faster in V8, and it keeps the fast property
 * layout); anything else goes through its descriptors.
 */
function copyOf(source: object): object {
  const prototype = Object.getPrototypeOf(source) as object | null;
  const keys = Object.keys(source);
  if (Object.getOwnPropertyNames(source).length === keys.length && Object.getOwnPropertySymbols(source).length === 0) {
    const copy = Object.create(prototype) as Record<string, unknown>;
    for (const key of keys) setOwn(copy, key, (source as Record<string, unknown>)[key]);
    return copy;
  }
  const descriptors = Object.getOwnPropertyDescriptors(source) as Record<PropertyKey, PropertyDescriptor>;
  for (const key of Reflect.ownKeys(descriptors)) {
    const descriptor = descriptors[key];
    descriptor.configurable = true;
    if ('value' in descriptor) descriptor.writable = true;
  }
  return Object.create(prototype, descriptors) as object;
}

/**
 * Sets `target`'s own data property `key` (writable, enumerable, configurable), on a copy made by
 * `copyOf`. Assignment does exactly that when the property is already own writable data, or when the
 * key is nowhere on the prototype chain; otherwise (a key named `__proto__`, a setter or read-only
 * property up the chain, a read-only own property) only `defineProperty` does.
 */
function setOwn(target: object, key: string, value: unknown): void {
  const own = Object.getOwnPropertyDescriptor(target, key);
  if (own ? own.writable : !(key in target)) (target as Record<string, unknown>)[key] = value;
  else Object.defineProperty(target, key, { value, writable: true, enumerable: true, configurable: true });
}
