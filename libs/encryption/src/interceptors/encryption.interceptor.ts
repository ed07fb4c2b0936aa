import type { CallHandler, ExecutionContext, HttpException, NestInterceptor } from '@nestjs/common';
import { Inject, Injectable, Optional } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import type { Observable } from 'rxjs';
import { concatMap, defer, switchMap } from 'rxjs';

import { ENCRYPTED_BODY_METADATA, ENCRYPTION_INTERCEPTOR_OPTIONS } from '../encryption.constants.js';
import { EncryptionEvents } from '../encryption-events.service.js';
import { EncryptionConfigError } from '../errors/encryption.errors.js';
import type { BodyParamType } from '../field-encryption/body-param-types.js';
import { bodyParamTypesOf } from '../field-encryption/body-param-types.js';
import { EncryptedFieldError } from '../field-encryption/encrypted-field.error.js';
import { EncryptedFieldException } from '../field-encryption/encrypted-field.exception.js';
import { FIELD_MESSAGES } from '../field-encryption/field-encryption.messages.js';
import {
  DEFAULT_MAX_BODY_LENGTH,
  DEFAULT_MAX_FIELD_LENGTH,
  FieldEncryptionService,
} from '../field-encryption/field-encryption.service.js';
import type { EncryptedBodyOptions } from '../interfaces/encrypted-field-options.interface.js';
import type { EncryptionInterceptorOptions } from '../interfaces/encryption-interceptor-options.interface.js';

/**
 * Field-level encryption over HTTP, both ways.
 *
 * - Requests: before pipes run, the `@Encrypted()` fields of the handler's `@Body()` DTO class
 *   (nested classes and arrays too) are decrypted in place in `request.body`, so a `ValidationPipe`
 *   validates plaintext; on an `@EncryptedBody()` route the body `{ "ciphertext": "..." }` is
 *   replaced by the value it decrypts to instead. Anything that can't be accepted is a 400
 *   (`EncryptedFieldException`) and a `request-rejected` event.
 * - Responses: the `@Encrypted()` fields of the class instances returned (plain, in arrays or nested,
 *   from a value, a Promise or an Observable) are replaced by their text-form ciphertexts, in copies.
 *
 * Nest runs guards → interceptors (here the body is decrypted) → pipes (validation) → handler →
 * interceptors (here the response is encrypted) → serialization. With `ClassSerializerInterceptor`,
 * register this one after it (`useGlobalInterceptors(serializer, encryption)`, or this one on a
 * controller or handler), so it sees the response while it is still made of class instances.
 */
@Injectable()
export class EncryptionInterceptor implements NestInterceptor {
  /** Whether request bodies are decrypted. */
  protected readonly decryptsRequests: boolean = true;
  /** Whether responses are encrypted. */
  protected readonly encryptsResponses: boolean = true;
  protected readonly options: Required<EncryptionInterceptorOptions>;

  constructor(
    protected readonly fields: FieldEncryptionService,
    protected readonly events: EncryptionEvents,
    protected readonly reflector: Reflector,
    @Optional() @Inject(ENCRYPTION_INTERCEPTOR_OPTIONS) options: EncryptionInterceptorOptions = {},
  ) {
    this.options = {
      maxFieldLength: checkLimit(options.maxFieldLength ?? DEFAULT_MAX_FIELD_LENGTH),
      maxBodyLength: checkLimit(options.maxBodyLength ?? DEFAULT_MAX_BODY_LENGTH),
    };
  }

  intercept(context: ExecutionContext, next: CallHandler): Observable<unknown> {
    const input = this.decryptsRequests && context.getType() === 'http' ? this.encryptedInputOf(context) : undefined;
    // Routes without an encrypted body (every GET) skip the extra async step entirely.
    const handled = input
      ? defer(() => this.decryptRequest(context, input)).pipe(switchMap(() => next.handle()))
      : next.handle();
    if (!this.encryptsResponses) return handled;
    return handled.pipe(concatMap((value) => this.encryptResponse(value, context)));
  }

  /** What of the request body this route decrypts: an `@EncryptedBody()` envelope, class-typed `@Body()` params, or nothing. */
  private encryptedInputOf(context: ExecutionContext): EncryptedInput | undefined {
    const envelope = this.reflector.getAllAndOverride<EncryptedBodyOptions | undefined>(ENCRYPTED_BODY_METADATA, [
      context.getHandler(),
      context.getClass(),
    ]);
    if (envelope) return { envelope };
    const params = bodyParamTypesOf(context.getClass(), context.getHandler());
    return params.length ? { params } : undefined;
  }

  /** Decrypts the body of the request in place (or replaces an `@EncryptedBody()` envelope). */
  protected async decryptRequest(context: ExecutionContext, input: EncryptedInput): Promise<void> {
    const request = context.switchToHttp().getRequest<{ body?: unknown }>();
    try {
      if (input.envelope) {
        request.body = await this.fields.decryptBody(request.body, {
          context: input.envelope.context,
          maxLength: input.envelope.maxLength ?? this.options.maxBodyLength,
        });
        return;
      }
      for (const { property, type } of input.params ?? []) {
        const body = request.body as Record<string, unknown> | undefined;
        const value = property === undefined ? body : typeof body === 'object' && body !== null ? body[property] : undefined;
        await this.fields.decryptFields(value, type, { maxLength: this.options.maxFieldLength, path: property });
      }
    } catch (error) {
      if (error instanceof EncryptedFieldError) throw this.reject(error, context);
      throw error;
    }
  }

  /** Encrypts one value the handler produced (each emission of an Observable). */
  protected encryptResponse(value: unknown, _context: ExecutionContext): Promise<unknown> {
    return this.fields.encryptFields(value);
  }

  /** Reports a refused field (its path and precise code, never its value) and builds the 400. */
  protected reject(error: EncryptedFieldError, _context: ExecutionContext): HttpException {
    this.events.emit({ type: 'request-rejected', field: error.field, reason: error.code });
    return new EncryptedFieldException(error);
  }
}

/** A route's encrypted request input: one of the two. */
interface EncryptedInput {
  envelope?: EncryptedBodyOptions;
  params?: readonly BodyParamType[];
}

function checkLimit(limit: number): number {
  if (!Number.isSafeInteger(limit) || limit <= 0) throw new EncryptionConfigError(FIELD_MESSAGES.INVALID_MAX_LENGTH);
  return limit;
}
