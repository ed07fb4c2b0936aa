import { SetMetadata } from '@nestjs/common';

import { ENCRYPTED_BODY_METADATA } from '../encryption.constants.js';
import type { EncryptedBodyOptions } from '../interfaces/encrypted-field-options.interface.js';

/**
 * On a handler or controller: the request body arrives as one envelope, the JSON object
 * `{ "ciphertext": "<text form of EncryptionService.encryptToString(body)>" }`, and the interceptor
 * replaces it with the decrypted value before pipes run. Any other body is refused with 400.
 */
export const EncryptedBody = (options: EncryptedBodyOptions = {}): ClassDecorator & MethodDecorator =>
  SetMetadata(ENCRYPTED_BODY_METADATA, options);
