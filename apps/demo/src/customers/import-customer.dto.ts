import { IsEmail, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';
import { Encrypted } from 'nestjs-encryption';

/**
 * A customer sent by another service that shares the key ring: the personal fields arrive encrypted
 * (text form) and are decrypted before validation, so the rules below check the plaintext.
 */
export class ImportCustomerDto {
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @Encrypted() @IsEmail() email!: string;
  @Encrypted() @IsOptional() @Matches(/^\+?[0-9 ()-]{6,20}$/, { message: 'phone must be a phone number' }) phone?: string;
  @Encrypted() @IsString() @IsNotEmpty() @MaxLength(64) nationalId!: string;
}
