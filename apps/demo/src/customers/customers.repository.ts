import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { EncryptionService } from 'nestjs-encryption';

import type { CreateCustomerDto } from './create-customer.dto.js';
import { RevealedCustomer } from './customer.entity.js';

/** The personal fields of a customer: what is kept only as ciphertext. */
type PersonalFields = Pick<RevealedCustomer, 'email' | 'phone' | 'nationalId'>;

/**
 * How a record rests in storage: the personal fields sealed together as one JSON envelope, bound to
 * the record's id (`{ record: id }` as context), so a sealed value can't be moved to another record.
 */
export interface StoredCustomer {
  id: string;
  name: string;
  createdAt: string;
  personal: string;
}

/**
 * Keeps customers in memory, encrypted at rest. (A real app would use a database; the point here is
 * that nothing sensitive is ever stored in plaintext.) One envelope per record rather than one per
 * field: a read costs one decryption, not three, and the fields can't be swapped between records.
 */
@Injectable()
export class CustomersRepository {
  private readonly records = new Map<string, StoredCustomer>();

  constructor(private readonly encryption: EncryptionService) {}

  async create(input: CreateCustomerDto): Promise<RevealedCustomer> {
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    const personal: PersonalFields = { email: input.email, nationalId: input.nationalId };
    if (input.phone !== undefined) personal.phone = input.phone;
    const sealed = await this.encryption.encryptToString(personal, { context: bound(id) });
    this.records.set(id, { id, name: input.name, createdAt, personal: sealed });
    return new RevealedCustomer({ id, name: input.name, ...personal, createdAt });
  }

  async find(id: string): Promise<RevealedCustomer | undefined> {
    const stored = this.records.get(id);
    if (!stored) return undefined;
    const personal = await this.encryption.decrypt<PersonalFields>(stored.personal, { context: bound(id) });
    return new RevealedCustomer({ id, name: stored.name, ...personal, createdAt: stored.createdAt });
  }

  async list(): Promise<RevealedCustomer[]> {
    const customers = await Promise.all([...this.records.keys()].map((id) => this.find(id)));
    return customers.filter((customer): customer is RevealedCustomer => customer !== undefined);
  }

  /** The stored form, for the demo page and tests that check nothing is kept in plaintext. */
  stored(id: string): StoredCustomer | undefined {
    const record = this.records.get(id);
    return record && { ...record };
  }
}

const bound = (id: string) => ({ record: id });
