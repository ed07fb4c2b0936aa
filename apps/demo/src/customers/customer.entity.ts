import { Encrypted } from 'nestjs-encryption';

/**
 * A customer as the API returns it. The three personal fields are `@Encrypted()`: responses carry
 * them as ciphertext (text form). `@Encrypted()` has no per-record context, so unlike the stored form
 * (bound to the record, see CustomersRepository) a response ciphertext is not tied to its customer.
 */
export class Customer {
  id!: string;
  name!: string;
  @Encrypted() email!: string;
  @Encrypted() phone?: string;
  @Encrypted() nationalId!: string;
  createdAt!: string;

  constructor(fields: Customer) {
    Object.assign(this, fields);
  }
}

/** The same record with plaintext fields: what an authorised back office sees. */
export class RevealedCustomer {
  id!: string;
  name!: string;
  email!: string;
  phone?: string;
  nationalId!: string;
  createdAt!: string;

  constructor(fields: RevealedCustomer) {
    Object.assign(this, fields);
  }
}
