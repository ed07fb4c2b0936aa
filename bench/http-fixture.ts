import 'reflect-metadata';

import { createCipheriv, createDecipheriv, randomBytes, randomUUID } from 'node:crypto';

import type { DynamicModule, INestApplication } from '@nestjs/common';
import {
  ClassSerializerInterceptor,
  Controller,
  Get,
  Injectable,
  Module,
  NotFoundException,
  Param,
  ParseUUIDPipe,
  ValidationPipe,
} from '@nestjs/common';
import { APP_INTERCEPTOR, APP_PIPE, NestFactory } from '@nestjs/core';
import { EncryptionInterceptor, EncryptionModule, InMemoryKeyStore } from 'nestjs-encryption';

import { AdminTokenGuard } from '../apps/demo/src/admin/admin-token.guard.js';
import { DEMO_CONFIG, loadDemoConfig } from '../apps/demo/src/config/demo.config.js';
import { CustomersController } from '../apps/demo/src/customers/customers.controller.js';
import { CustomersRepository } from '../apps/demo/src/customers/customers.repository.js';

/**
 * Baselines for the HTTP benchmark of the demo's `GET /customers/:id`. All keep the demo's request
 * pipeline: Express, the same global `ValidationPipe` and `ClassSerializerInterceptor`, `ParseUUIDPipe`,
 * an async in-memory repository and a class instance as the response.
 */

export interface CustomerFields {
  name: string;
  email: string;
  phone?: string;
  nationalId: string;
}

/** The demo's `Customer` without `@Encrypted()`. */
export class PlainCustomer {
  id!: string;
  name!: string;
  email!: string;
  phone?: string;
  nationalId!: string;
  createdAt!: string;

  constructor(fields: PlainCustomer) {
    Object.assign(this, fields);
  }
}

/** The demo's repository without encryption at rest: records are copied out as the demo's are. */
@Injectable()
export class PlainCustomersRepository {
  private readonly records = new Map<string, PlainCustomer>();

  async create(input: CustomerFields): Promise<PlainCustomer> {
    const customer = new PlainCustomer({ ...input, id: randomUUID(), createdAt: new Date().toISOString() });
    this.records.set(customer.id, customer);
    return customer;
  }

  async find(id: string): Promise<PlainCustomer | undefined> {
    const stored = this.records.get(id);
    return stored && new PlainCustomer({ ...stored });
  }
}

/** The demo controller's read endpoint, returning a class without `@Encrypted()`. */
@Controller('customers')
export class PlainCustomersController {
  constructor(private readonly customers: PlainCustomersRepository) {}

  @Get(':id')
  async find(@Param('id', ParseUUIDPipe) id: string): Promise<PlainCustomer> {
    const customer = await this.customers.find(id);
    if (!customer) throw new NotFoundException(`No customer ${id}`);
    return new PlainCustomer(customer);
  }
}

/**
 * The demo's work done by hand with bare `node:crypto`, as a careful developer would write it without a
 * library: each record's personal fields AES-256-GCM-sealed at rest as one JSON document (random 12-byte
 * IV, record id as AAD, `iv || ciphertext || tag` in base64url), opened on every read, and each field
 * sealed again for the response. The same four operations as the demo, and nothing else: no key ids,
 * rotation or metrics.
 */
@Injectable()
export class BareCryptoCustomersRepository {
  private readonly key = randomBytes(32);
  private readonly records = new Map<string, { id: string; name: string; createdAt: string; personal: string }>();

  async create(input: CustomerFields): Promise<PlainCustomer> {
    const id = randomUUID();
    const { name, ...personal } = input;
    this.records.set(id, {
      id,
      name,
      createdAt: new Date().toISOString(),
      personal: this.seal(JSON.stringify(personal), id),
    });
    return this.find(id) as Promise<PlainCustomer>;
  }

  async find(id: string): Promise<PlainCustomer | undefined> {
    const stored = this.records.get(id);
    if (!stored) return undefined;
    const personal = JSON.parse(this.open(stored.personal, id)) as Omit<CustomerFields, 'name'>;
    return new PlainCustomer({ id, name: stored.name, ...personal, createdAt: stored.createdAt });
  }

  /** Seals a field for a response (no AAD, like `@Encrypted()` without a context). */
  seal(plaintext: string, aad?: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    if (aad) cipher.setAAD(Buffer.from(aad));
    const ciphertext = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return Buffer.concat([iv, ciphertext, cipher.getAuthTag()]).toString('base64url');
  }

  open(text: string, aad?: string): string {
    const bytes = Buffer.from(text, 'base64url');
    const decipher = createDecipheriv('aes-256-gcm', this.key, bytes.subarray(0, 12));
    if (aad) decipher.setAAD(Buffer.from(aad));
    decipher.setAuthTag(bytes.subarray(bytes.length - 16));
    return Buffer.concat([decipher.update(bytes.subarray(12, bytes.length - 16)), decipher.final()]).toString('utf8');
  }
}

const BARE_SENSITIVE = ['email', 'phone', 'nationalId'] as const;

/** The read endpoint over the bare repository: opens the stored fields, seals them again for the response. */
@Controller('customers')
export class BareCryptoCustomersController {
  constructor(private readonly customers: BareCryptoCustomersRepository) {}

  @Get(':id')
  async find(@Param('id', ParseUUIDPipe) id: string): Promise<PlainCustomer> {
    const customer = await this.customers.find(id);
    if (!customer) throw new NotFoundException(`No customer ${id}`);
    const response = new PlainCustomer(customer);
    for (const field of BARE_SENSITIVE) {
      const value = response[field];
      if (value !== undefined) response[field] = this.customers.seal(value);
    }
    return response;
  }
}

const demoPipeline = [
  { provide: APP_PIPE, useValue: new ValidationPipe({ whitelist: true, forbidNonWhitelisted: true, transform: true }) },
  { provide: APP_INTERCEPTOR, useClass: ClassSerializerInterceptor },
];

/** No encryption anywhere: the baseline. */
@Module({ controllers: [PlainCustomersController], providers: [PlainCustomersRepository, ...demoPipeline] })
export class PlainCustomersModule {}

/**
 * The demo's own controller and repository (fields encrypted at rest, decrypted on every read), without
 * the demo's health, metrics and scheduling modules; with `responses: false` also without
 * `EncryptionInterceptor`, so responses go out in plaintext. Together with the demo and the plain
 * baseline, these split the cost of encryption into its parts.
 */
@Module({})
export class DemoCustomersModule {
  static register({ responses }: { responses: boolean }): DynamicModule {
    return {
      module: DemoCustomersModule,
      imports: [EncryptionModule.forRoot({ isGlobal: true, keyStore: new InMemoryKeyStore() })],
      controllers: [CustomersController],
      providers: [
        { provide: DEMO_CONFIG, useValue: loadDemoConfig({}) },
        CustomersRepository,
        AdminTokenGuard,
        ...demoPipeline,
        // As in the demo's AppModule: inside the serializer, so it sees class instances.
        ...(responses ? [{ provide: APP_INTERCEPTOR, useExisting: EncryptionInterceptor }] : []),
      ],
    };
  }
}

@Module({ controllers: [BareCryptoCustomersController], providers: [BareCryptoCustomersRepository, ...demoPipeline] })
export class BareCryptoCustomersModule {}

export async function createBareCryptoCustomersApp(): Promise<INestApplication> {
  return NestFactory.create(BareCryptoCustomersModule, { logger: false, abortOnError: false });
}

export async function createPlainCustomersApp(): Promise<INestApplication> {
  return NestFactory.create(PlainCustomersModule, { logger: false, abortOnError: false });
}

export async function createDemoCustomersApp(options: { responses: boolean }): Promise<INestApplication> {
  return NestFactory.create(DemoCustomersModule.register(options), { logger: false, abortOnError: false });
}
