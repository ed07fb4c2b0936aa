import { Controller, Get, NotFoundException, Param, ParseUUIDPipe } from '@nestjs/common';

import { CustomersRepository } from './customers.repository.js';

type StoredCustomer = NonNullable<ReturnType<CustomersRepository['stored']>>;

/**
 * The stored form of a customer, for the browser demo: personal fields as the at-rest ciphertexts
 * (bound to record and field), nothing decrypted. A real API would not expose its storage.
 */
@Controller('customers')
export class CustomerStorageController {
  constructor(private readonly customers: CustomersRepository) {}

  @Get(':id/stored')
  stored(@Param('id', ParseUUIDPipe) id: string): StoredCustomer {
    const stored = this.customers.stored(id);
    if (!stored) throw new NotFoundException(`No customer ${id}`);
    return stored;
  }
}
