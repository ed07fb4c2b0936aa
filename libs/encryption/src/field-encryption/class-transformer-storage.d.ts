// class-transformer keeps `@Type()` metadata in a storage it only exports from this deep path, which
// ships without typings of its own (the same path @nestjs/mapped-types reads).
declare module 'class-transformer/cjs/storage.js' {
  import type { MetadataStorage } from 'class-transformer/types/MetadataStorage.js';

  export const defaultMetadataStorage: MetadataStorage;
}
