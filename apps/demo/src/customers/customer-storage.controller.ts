import { Controller, Get, NotFoundException, Param, ParseUUIDPipe } from '@nestjs/common';

import type { StoredCustomer } from './customers.repository.js';
import { CustomersRepository } from './customers.repository.js';

/**
 * The stored form of a customer, for the browser demo: the personal fields as one at-rest ciphertext
 * (bound to the record), nothing decrypted. A real API would not expose its storage.
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
