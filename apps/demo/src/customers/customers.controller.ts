import { Body, Controller, Get, NotFoundException, Param, ParseUUIDPipe, Post, UseGuards } from '@nestjs/common';
import { EncryptedBody } from 'nestjs-encryption';

import { AdminTokenGuard } from '../admin/admin-token.guard.js';
import { CreateCustomerDto } from './create-customer.dto.js';
import { Customer, RevealedCustomer } from './customer.entity.js';
import { CustomersRepository } from './customers.repository.js';
import { ImportCustomerDto } from './import-customer.dto.js';

/** Customer records whose e-mail, phone and national id never leave the server in plaintext. */
@Controller('customers')
export class CustomersController {
  constructor(private readonly customers: CustomersRepository) {}

  @Post()
  async create(@Body() input: CreateCustomerDto): Promise<Customer> {
    return new Customer(await this.customers.create(input));
  }

  /** Fields arrive encrypted (see `ImportCustomerDto`); the handler sees plaintext. */
  @Post('import')
  async import(@Body() input: ImportCustomerDto): Promise<Customer> {
    return new Customer(await this.customers.create(input));
  }

  /** The whole body arrives as one envelope: `{ "ciphertext": "<encryptToString(customer)>" }`. */
  @Post('envelope')
  @EncryptedBody()
  async createFromEnvelope(@Body() input: CreateCustomerDto): Promise<Customer> {
    return new Customer(await this.customers.create(input));
  }

  @Get()
  async list(): Promise<Customer[]> {
    return (await this.customers.list()).map((customer) => new Customer(customer));
  }

  @Get(':id')
  async find(@Param('id', ParseUUIDPipe) id: string): Promise<Customer> {
    return new Customer(await this.found(id));
  }

  /** The plaintext record, for an authorised back office (admin token). */
  @Get(':id/plaintext')
  @UseGuards(AdminTokenGuard)
  async reveal(@Param('id', ParseUUIDPipe) id: string): Promise<RevealedCustomer> {
    return this.found(id);
  }

  private async found(id: string): Promise<RevealedCustomer> {
    const customer = await this.customers.find(id);
    if (!customer) throw new NotFoundException(`No customer ${id}`);
    return customer;
  }
}
