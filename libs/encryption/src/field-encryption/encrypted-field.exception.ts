import { BadRequestException } from '@nestjs/common';

import type { EncryptedFieldError, EncryptedFieldRejection } from './encrypted-field.error.js';

/** The JSON body of a refused encrypted field or body. */
export interface EncryptedFieldRejectionBody {
  statusCode: 400;
  error: 'Bad Request';
  message: string;
  /** Dotted path of the field, or `body`. */
  field: string;
  reason: EncryptedFieldRejection;
}

/**
 * HTTP 400 for an `EncryptedFieldError`:
 * `{ statusCode: 400, error: 'Bad Request', message, field, reason }`. Carries no value.
 */
export class EncryptedFieldException extends BadRequestException {
  readonly field: string;
  readonly reason: EncryptedFieldRejection;

  constructor(error: EncryptedFieldError) {
    const body: EncryptedFieldRejectionBody = {
      statusCode: 400,
      error: 'Bad Request',
      message: error.message,
      field: error.field,
      reason: error.reason,
    };
    super(body, { cause: error });
    this.field = error.field;
    this.reason = error.reason;
  }
}
