import { defaultMetadataStorage } from 'class-transformer/cjs/storage.js';

import { ENCRYPTED_FIELDS_METADATA } from '../encryption.constants.js';
import type { EncryptedFieldOptions } from '../interfaces/encrypted-field-options.interface.js';

/** A class (abstract ones too), as metadata sees it. */
// eslint-disable-next-line @typescript-eslint/no-unsafe-function-type -- Reflect metadata targets are any constructor, abstract ones included
export type ClassRef = Function;

const NO_FIELDS: ReadonlyMap<string, EncryptedFieldOptions> = new Map();
const fieldsByClass = new WeakMap<ClassRef, ReadonlyMap<string, EncryptedFieldOptions>>();

/** Built-in types that `design:type` reports and that are never walked into as nested classes. */
const BUILT_INS = new Set<unknown>([
  Object, String, Number, Boolean, Symbol, BigInt, Function, Array, Date, RegExp, Error, Promise,
  Map, Set, WeakMap, WeakSet, ArrayBuffer, SharedArrayBuffer, DataView, Buffer, Uint8Array,
]);

/**
 * The `@Encrypted()` properties of a class, its ancestors' included (a subclass's own options win).
 * Decorators have all run once a class exists, so the merged map is computed once per class.
 */
export function encryptedFieldsOf(type: ClassRef | undefined): ReadonlyMap<string, EncryptedFieldOptions> {
  if (typeof type !== 'function' || type === Object) return NO_FIELDS;
  let fields = fieldsByClass.get(type);
  if (!fields) {
    const parent = Object.getPrototypeOf(type) as ClassRef | null;
    const inherited = parent && parent !== Function.prototype ? encryptedFieldsOf(parent) : NO_FIELDS;
    const own: ReadonlyMap<string, EncryptedFieldOptions> | undefined = Reflect.getOwnMetadata(ENCRYPTED_FIELDS_METADATA, type);
    fields = own ? new Map([...inherited, ...own]) : inherited;
    fieldsByClass.set(type, fields);
  }
  return fields;
}

/** The emitted `design:type` of a property, when the compiler emitted one (any decorated property). */
export function designTypeOf(type: ClassRef, property: string): unknown {
  return Reflect.getMetadata('design:type', type.prototype as object, property);
}

/** Whether a type names a user class rather than a built-in one. */
export function isUserClass(value: unknown): value is ClassRef {
  return typeof value === 'function' && !BUILT_INS.has(value) && value.prototype !== undefined;
}

/** The class an object was built from, unless it is a plain object (or of a built-in class). */
export function runtimeClassOf(value: object): ClassRef | undefined {
  const prototype = Object.getPrototypeOf(value) as { constructor?: unknown } | null;
  const type = prototype?.constructor;
  return prototype !== Object.prototype && isUserClass(type) ? type : undefined;
}

/**
 * The class of the value of `property` of `type` (or of each element, for an array), for walking
 * into plain request bodies. Read from class-transformer's `@Type(() => X)` first, as users already
 * write it for `ValidationPipe` and it is the only source for arrays, with its discriminator when it
 * has one; otherwise from `design:type`, which TypeScript emits for decorated properties of a class
 * type (but reports only `Array` for arrays).
 */
export function nestedTypeOf(type: ClassRef, property: string, container: object, value: unknown): ClassRef | undefined {
  const metadata = defaultMetadataStorage.findTypeMetadata(type, property);
  if (metadata) {
    const discriminator = metadata.options?.discriminator;
    if (discriminator && typeof value === 'object' && value !== null) {
      const name = (value as Record<string, unknown>)[discriminator.property];
      const subType = discriminator.subTypes.find((candidate) => candidate.name === name);
      if (subType) return subType.value;
    }
    const resolved = metadata.typeFunction({ newObject: {}, object: container as Record<string, unknown>, property });
    return isUserClass(resolved) ? resolved : undefined;
  }
  const designType = designTypeOf(type, property);
  return isUserClass(designType) ? designType : undefined;
}
