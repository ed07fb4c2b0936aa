import { ENCRYPTED_FIELDS_METADATA } from '../encryption.constants.js';
import { FIELD_MESSAGES } from '../field-encryption/field-encryption.messages.js';
import type { EncryptedFieldOptions } from '../interfaces/encrypted-field-options.interface.js';

/**
 * Marks a property whose value is stored and sent encrypted. Responses carry it in the text form of
 * `EncryptionService.encryptToString`; request bodies must carry it so, and get the plaintext back
 * before validation. The value may be any JSON type and decrypts to the same type; `null` and
 * `undefined` are left as they are. In request bodies, nested classes are found through
 * class-transformer's `@Type(() => X)` (needed for arrays), else through `design:type`.
 * See docs/FIELD-ENCRYPTION.md.
 *
 * ```ts
 * class CustomerDto {
 *   @Encrypted() @IsEmail() email!: string;
 *   @Encrypted({ context: 'customer.iban' }) iban?: string;
 * }
 * ```
 */
export function Encrypted(options: EncryptedFieldOptions = {}): PropertyDecorator {
  const checked = Object.freeze({ ...checkOptions(options) });
  return (target: object, propertyKey: string | symbol, descriptor?: PropertyDescriptor) => {
    // An accessor or method would not be an own property that the walkers can see: fail at load time.
    if (typeof target === 'function' || typeof propertyKey !== 'string' || descriptor !== undefined) {
      throw new TypeError(FIELD_MESSAGES.DECORATOR_TARGET(String(propertyKey)));
    }
    const type = target.constructor;
    const own: ReadonlyMap<string, EncryptedFieldOptions> | undefined = Reflect.getOwnMetadata(ENCRYPTED_FIELDS_METADATA, type);
    Reflect.defineMetadata(ENCRYPTED_FIELDS_METADATA, new Map(own).set(propertyKey, checked), type);
  };
}

function checkOptions(options: EncryptedFieldOptions): EncryptedFieldOptions {
  const { context, compress, maxLength } = options;
  const contextOk =
    context === undefined ||
    typeof context === 'string' ||
    (typeof context === 'object' && context !== null && Object.values(context).every((v) => typeof v === 'string'));
  if (!contextOk) throw new TypeError(FIELD_MESSAGES.INVALID_FIELD_CONTEXT);
  if (compress !== undefined && typeof compress !== 'boolean') throw new TypeError(FIELD_MESSAGES.INVALID_COMPRESS);
  if (maxLength !== undefined && !(Number.isSafeInteger(maxLength) && maxLength > 0)) {
    throw new TypeError(FIELD_MESSAGES.INVALID_MAX_LENGTH);
  }
  return options;
}
