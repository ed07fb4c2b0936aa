import 'reflect-metadata';

import type { CallHandler } from '@nestjs/common';
import { Body, Controller, Post } from '@nestjs/common';
import { Reflector } from '@nestjs/core';
import { ExecutionContextHost } from '@nestjs/core/helpers/execution-context-host.js';
import { Test } from '@nestjs/testing';
import { firstValueFrom, lastValueFrom, Observable, of, toArray } from 'rxjs';

import type { EncryptionTestApp } from '../../../../test/support/encryption-test-app.js';
import { encryptionTestApps } from '../../../../test/support/encryption-test-app.js';
import { Encrypted } from '../decorators/encrypted.decorator.js';
import { EncryptedBody } from '../decorators/encrypted-body.decorator.js';
import { EncryptionModule } from '../encryption.module.js';
import { EncryptionConfigError,EncryptionError } from '../errors/encryption.errors.js';
import { EncryptedFieldException } from '../field-encryption/encrypted-field.exception.js';
import { FieldEncryptionService } from '../field-encryption/field-encryption.service.js';
import type { EncryptionEvent } from '../interfaces/encryption-event.interface.js';
import type { EncryptionInterceptorOptions } from '../interfaces/encryption-interceptor-options.interface.js';
import { EncryptedRequestInterceptor } from './encrypted-request.interceptor.js';
import { EncryptedResponseInterceptor } from './encrypted-response.interceptor.js';
import { EncryptionInterceptor } from './encryption.interceptor.js';

class Card {
  @Encrypted() number!: string;
  holder!: string;
}

@Controller('cards')
class CardsController {
  @Post()
  create(@Body() card: Card): Card {
    return card;
  }

  @Post('sealed')
  @EncryptedBody({ context: 'sealed' })
  sealed(@Body() card: Card): Card {
    return card;
  }
}

const apps = encryptionTestApps();
afterAll(() => apps.closeAll());

describe('EncryptionInterceptor', () => {
  let app: EncryptionTestApp;
  let events: EncryptionEvent[];

  beforeAll(async () => {
    app = await apps.create();
    app.events.subscribe((event) => events.push(event));
  });
  beforeEach(() => {
    events = [];
  });

  function interceptor<T extends EncryptionInterceptor>(
    type: new (...args: ConstructorParameters<typeof EncryptionInterceptor>) => T = EncryptionInterceptor as never,
    options?: EncryptionInterceptorOptions,
  ): T {
    return new type(app.module.get(FieldEncryptionService), app.events, new Reflector(), options);
  }

  function httpContext(body: unknown, handler: 'create' | 'sealed' = 'create') {
    const request = { body };
    const context = new ExecutionContextHost([request, {}, () => undefined], CardsController, CardsController.prototype[handler]);
    context.setType('http');
    return { request, context };
  }

  /** A route handler stand-in that counts its calls. */
  function handler(result: () => Observable<unknown>): CallHandler & { calls: number } {
    const next = {
      calls: 0,
      handle: () => {
        next.calls++;
        return result();
      },
    };
    return next;
  }

  const card = async (number: string) => ({ number: await app.encryption.encryptToString(number), holder: 'Ann' });

  it('decrypts the @Body() DTO fields in place before the handler runs', async () => {
    const { request, context } = httpContext(await card('4111 1111'));
    const next = handler(() => of(structuredClone(request.body)));
    const result = await lastValueFrom(interceptor().intercept(context, next));
    expect(next.calls).toBe(1);
    expect(result).toEqual({ number: '4111 1111', holder: 'Ann' });
    expect(request.body).toEqual({ number: '4111 1111', holder: 'Ann' });
  });

  it('replaces an @EncryptedBody() envelope with its value', async () => {
    const value = { number: 'plain inside', holder: 'Bo' };
    const { request, context } = httpContext({ ciphertext: await app.encryption.encryptToString(value, { context: 'sealed' }) }, 'sealed');
    await lastValueFrom(interceptor().intercept(context, handler(() => of(null))));
    expect(request.body).toEqual(value);
  });

  it('refuses with EncryptedFieldException and a request-rejected event, without calling the handler', async () => {
    const { context } = httpContext({ number: 'AAAA', holder: 'Ann' });
    const next = handler(() => of(null));
    const error = await firstValueFrom(interceptor().intercept(context, next)).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EncryptedFieldException);
    expect((error as EncryptedFieldException).getStatus()).toBe(400);
    expect((error as EncryptedFieldException).getResponse()).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'Encrypted field "number" could not be decrypted',
      field: 'number',
      reason: 'DECRYPTION_FAILED',
    });
    expect(next.calls).toBe(0);
    expect(events.filter((event) => event.type === 'request-rejected')).toEqual([
      { type: 'request-rejected', field: 'number', reason: 'DECRYPTION_FAILED' },
    ]);
  });

  it('lets failures that are not about the ciphertext through as they are, not as a 400', async () => {
    // A module that was never initialised has no key ring: a server fault, not the client's.
    const cold = await Test.createTestingModule({ imports: [EncryptionModule.forRoot({})] }).compile();
    const coldInterceptor = cold.get(EncryptionInterceptor);
    const { context } = httpContext(await card('4111'));
    const error = await firstValueFrom(coldInterceptor.intercept(context, handler(() => of(null)))).catch((caught: unknown) => caught);
    expect(error).toBeInstanceOf(EncryptionError);
    expect(error).not.toBeInstanceOf(EncryptedFieldException);
    expect((error as EncryptionError).code).toBe('KEY_RING_NOT_READY');
    await cold.close();
  });

  it('encrypts every value an Observable emits, in order', async () => {
    const cards = ['1', '2', '3'].map((number) => Object.assign(new Card(), { number, holder: 'H' }));
    const { context } = httpContext(undefined);
    const emitted = (await lastValueFrom(
      interceptor().intercept(context, handler(() => of(...cards))).pipe(toArray<unknown>()),
    )) as Card[];
    expect(await Promise.all(emitted.map((item) => app.encryption.decrypt(item.number)))).toEqual(['1', '2', '3']);
    expect(emitted.every((item) => item instanceof Card && item.holder === 'H')).toBe(true);
    expect(cards.map((item) => item.number)).toEqual(['1', '2', '3']);
  });

  it('only encrypts responses outside HTTP', async () => {
    const { request, context } = httpContext(await card('rpc'));
    context.setType('rpc');
    const ciphertext = (request.body as { number: string }).number;
    const out = (await lastValueFrom(
      interceptor().intercept(context, handler(() => of(Object.assign(new Card(), { number: 'n', holder: 'h' })))),
    )) as Card;
    expect((request.body as { number: string }).number).toBe(ciphertext);
    expect(await app.encryption.decrypt(out.number)).toBe('n');
  });

  it('EncryptedResponseInterceptor leaves requests alone; EncryptedRequestInterceptor leaves responses alone', async () => {
    const body = await card('c');
    const ciphertext = body.number;
    const response = Object.assign(new Card(), { number: 'plain', holder: 'h' });

    const first = httpContext(body);
    const encrypted = (await lastValueFrom(interceptor(EncryptedResponseInterceptor).intercept(first.context, handler(() => of(response))))) as Card;
    expect((first.request.body as Card).number).toBe(ciphertext);
    expect(await app.encryption.decrypt(encrypted.number)).toBe('plain');

    const second = httpContext(structuredClone(body));
    const untouched = await lastValueFrom(interceptor(EncryptedRequestInterceptor).intercept(second.context, handler(() => of(response))));
    expect((second.request.body as Card).number).toBe('c');
    expect(untouched).toBe(response);
  });

  it('takes its limits from the constructor options', async () => {
    const { context } = httpContext(await card('4111'));
    const error = await firstValueFrom(interceptor(EncryptionInterceptor, { maxFieldLength: 20 }).intercept(context, handler(() => of(null)))).catch(
      (caught: unknown) => caught,
    );
    expect((error as EncryptedFieldException).getResponse()).toEqual({
      statusCode: 400,
      error: 'Bad Request',
      message: 'Encrypted field "number" exceeds the maximum length of 20 characters',
      field: 'number',
      reason: 'CIPHERTEXT_TOO_LARGE',
    });
    expect(events).toContainEqual({ type: 'request-rejected', field: 'number', reason: 'CIPHERTEXT_TOO_LARGE' });
  });

  it('refuses invalid limits at construction', () => {
    for (const options of [{ maxFieldLength: 0 }, { maxBodyLength: -1 }, { maxFieldLength: 1.5 }]) {
      expect(() => interceptor(EncryptionInterceptor, options)).toThrow(
        new EncryptionConfigError('A maximum ciphertext length must be a positive integer'),
      );
    }
  });

  it('is provided by EncryptionModule for app.get() and global registration', () => {
    expect(app.module.get(EncryptionInterceptor)).toBeInstanceOf(EncryptionInterceptor);
  });
});
