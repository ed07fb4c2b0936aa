import { Type } from 'class-transformer';
import {
  IsBoolean,
  IsIn,
  IsInt,
  IsNotEmpty,
  IsOptional,
  IsPositive,
  IsString,
  Max,
  MaxLength,
  Min,
  MinLength,
  ValidateNested,
} from 'class-validator';

import { AEAD_CIPHERS } from '../crypto/aead.js';

export const ALGORITHMS = [...AEAD_CIPHERS.map((cipher) => cipher.name), 'fernet'];
export const ASYMMETRIC_ALGORITHMS = ['RSA-OAEP-256', 'ECDH-ES+A256KW-X25519', 'ECDH-ES+A256KW-P256'];
export const MIN_PBKDF2_ITERATIONS = 100_000;
export const MAX_TIMER_DELAY_MS = 2 ** 31 - 1;

class KeyRetentionSchema {
  @IsOptional() @IsInt() @Min(0) maxPreviousKeys?: number;
  @IsOptional() @IsInt() @IsPositive() maxAgeMs?: number;
}

class ScheduledRotationSchema {
  @IsBoolean() enabled!: boolean;
  // setInterval treats larger delays as 1 ms.
  @IsInt() @IsPositive() @Max(MAX_TIMER_DELAY_MS) checkIntervalMs!: number;
}

class KeyPropagationSchema {
  @IsInt() @Min(0) delayMs!: number;
  @IsInt() @Min(10) @Max(2 ** 31 - 1) heartbeatIntervalMs!: number;
}

class DecryptionFailureBurstSchema {
  @IsInt() @Min(1) threshold!: number;
  @IsInt() @IsPositive() windowMs!: number;
}

class WorkerPoolSchema {
  @IsInt() @Min(0) @Max(64) size!: number;
  @IsInt() @Min(1024) @Max(2 ** 30) threshold!: number;
}

/** class-validator rules for the scalar options; checked once at boot by `resolveEncryptionOptions`. */
export class EncryptionOptionsSchema {
  @IsIn([32, 64]) keySize!: number;
  @IsInt() @Min(16) @Max(64) saltSize!: number;
  @IsInt() @Min(MIN_PBKDF2_ITERATIONS) @Max(10_000_000) iterations!: number;
  @IsIn(ALGORITHMS) algorithm!: string;
  // Python takes any int; at most ~100 years keeps `timestamp + ttl` exact.
  @IsOptional() @IsInt() @Min(1) @Max(3_155_760_000) fernetTtlSeconds?: number;
  @IsInt() @IsPositive() keyRotationInterval!: number;
  @IsBoolean() enableCompression!: boolean;
  @IsInt() @Min(0) compressionThreshold!: number;
  @IsIn(['gzip', 'brotli']) compressionAlgorithm!: string;
  @IsInt() @IsPositive() maxDecompressedSize!: number;
  @IsBoolean() enableKeyDerivation!: boolean;
  @IsBoolean() enableAsymmetric!: boolean;
  @IsIn(ASYMMETRIC_ALGORITHMS) asymmetricAlgorithm!: string;
  @IsIn([2048, 3072, 4096]) rsaKeySize!: number;
  @IsIn(['PKCS7']) paddingScheme!: string;
  @ValidateNested() @Type(() => KeyRetentionSchema) keyRetention!: KeyRetentionSchema;
  @ValidateNested() @Type(() => ScheduledRotationSchema) scheduledRotation!: ScheduledRotationSchema;
  @IsString() @IsNotEmpty() @MaxLength(200) instanceId!: string;
  @ValidateNested() @Type(() => KeyPropagationSchema) keyPropagation!: KeyPropagationSchema;
  @IsInt() @IsPositive() @Max(2 ** 32) maxEncryptionsPerKey!: number;
  @IsInt() @Min(0) unknownKeyReloadIntervalMs!: number;
  @ValidateNested() @Type(() => DecryptionFailureBurstSchema) decryptionFailureBurst!: DecryptionFailureBurstSchema;
  @IsOptional() @IsString() @MinLength(12) masterKeyPassphrase?: string;
  @ValidateNested() @Type(() => WorkerPoolSchema) workerPool!: WorkerPoolSchema;
}
