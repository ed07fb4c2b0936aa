import { IsEmail, IsNotEmpty, IsOptional, IsString, Matches, MaxLength } from 'class-validator';

export class CreateCustomerDto {
  @IsString() @IsNotEmpty() @MaxLength(200) name!: string;
  @IsEmail() email!: string;
  @IsOptional() @Matches(/^\+?[0-9 ()-]{6,20}$/, { message: 'phone must be a phone number' }) phone?: string;
  @IsString() @IsNotEmpty() @MaxLength(64) nationalId!: string;
}
