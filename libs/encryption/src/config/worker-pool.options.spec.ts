import 'reflect-metadata';

import { availableParallelism } from 'node:os';

import { EncryptionConfigError } from '../errors/encryption.errors.js';
import { resolveEncryptionOptions } from './resolve-encryption-options.js';

describe('workerPool options', () => {
  it('defaults to one thread per core and a 4 MiB threshold', () => {
    expect(resolveEncryptionOptions().workerPool).toEqual({ size: availableParallelism(), threshold: 4_194_304 });
    expect(resolveEncryptionOptions({ workerPool: { size: 0 } }).workerPool).toEqual({ size: 0, threshold: 4_194_304 });
    expect(resolveEncryptionOptions({ workerPool: { threshold: 1024 } }).workerPool).toEqual({ size: availableParallelism(), threshold: 1024 });
  });

  it.each([
    [{ size: -1 }, 'workerPool.size must not be less than 0'],
    [{ size: 65 }, 'workerPool.size must not be greater than 64'],
    [{ size: 1.5 }, 'workerPool.size must be an integer number'],
    [{ threshold: 1023 }, 'workerPool.threshold must not be less than 1024'],
    [{ threshold: 2 ** 30 + 1 }, 'workerPool.threshold must not be greater than 1073741824'],
    [{ threads: 2 }, 'workerPool.threads is not an option (known: size, threshold)'],
  ])('refuses %j', (workerPool, message) => {
    expect(() => resolveEncryptionOptions({ workerPool: workerPool as never })).toThrow(EncryptionConfigError);
    expect(() => resolveEncryptionOptions({ workerPool: workerPool as never })).toThrow(message);
  });

  it('refuses a workerPool that is not an object', () => {
    expect(() => resolveEncryptionOptions({ workerPool: 4 as never })).toThrow(EncryptionConfigError);
  });
});
