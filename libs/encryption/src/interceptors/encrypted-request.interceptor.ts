import { Injectable } from '@nestjs/common';

import { EncryptionInterceptor } from './encryption.interceptor.js';

/** Only the request half of `EncryptionInterceptor`: decrypts `@Encrypted()` body fields and `@EncryptedBody()` bodies. */
@Injectable()
export class EncryptedRequestInterceptor extends EncryptionInterceptor {
  protected override readonly encryptsResponses = false;
}
