import { randomUUID } from 'node:crypto';

import { Injectable } from '@nestjs/common';
import { EncryptionService } from 'nestjs-encryption';

import type { CreateCustomerDto } from './create-customer.dto.js';
import { RevealedCustomer } from './customer.entity.js';

/** How a record rests in storage: personal fields only as ciphertext, each bound to its record and field. */
interface StoredCustomer {
  id: string;
  name: string;
  email: string;
  phone?: string;
  nationalId: string;
  createdAt: string;
}

const SENSITIVE = ['email', 'phone', 'nationalId'] as const;

/**
 * Keeps customers in memory, encrypted at rest. (A real app would use a database; the point here is
 * that nothing sensitive is ever stored in plaintext.)
 */
@Injectable()
export class CustomersRepository {
  private readonly records = new Map<string, StoredCustomer>();

  constructor(private readonly encryption: EncryptionService) {}

  async create(input: CreateCustomerDto): Promise<RevealedCustomer> {
    const id = randomUUID();
    const createdAt = new Date().toISOString();
    const stored: StoredCustomer = { id, name: input.name, createdAt, email: '', nationalId: '' };
    for (const field of SENSITIVE) {
      const value = input[field];
      if (value !== undefined) stored[field] = await this.encryption.encryptToString(value, { context: bound(id, field) });
    }
    this.records.set(id, stored);
    return new RevealedCustomer({ ...input, id, createdAt });
  }

  async find(id: string): Promise<RevealedCustomer | undefined> {
    const stored = this.records.get(id);
    if (!stored) return undefined;
    const revealed = new RevealedCustomer({ ...stored });
    for (const field of SENSITIVE) {
      const value = stored[field];
      if (value !== undefined) revealed[field] = await this.encryption.decrypt<string>(value, { context: bound(id, field) });
    }
    return revealed;
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

const bound = (id: string, field: string) => ({ record: id, field });
