import { Injectable } from '@nestjs/common';

import { EncryptionInterceptor } from './encryption.interceptor.js';

/**
 * Only the response half of `EncryptionInterceptor`: encrypts the `@Encrypted()` fields of returned
 * class instances. Register it inside `ClassSerializerInterceptor` (after it, or closer to the handler).
 */
@Injectable()
export class EncryptedResponseInterceptor extends EncryptionInterceptor {
  protected override readonly decryptsRequests = false;
}
