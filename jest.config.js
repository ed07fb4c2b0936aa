/** Nest 12 is ESM-only, so Jest runs in its native ESM mode (see package.json "test"). */
export default {
  testEnvironment: 'node',
  roots: ['<rootDir>/libs', '<rootDir>/apps', '<rootDir>/test'],
  testRegex: '\\.(spec|e2e-spec)\\.ts$',
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: {
    '^nestjs-encryption$': '<rootDir>/libs/encryption/src/index.ts',
    // Optional integrations are subpath entry points so their peer dependencies stay optional.
    '^nestjs-encryption/(.*)$': '<rootDir>/libs/encryption/src/$1/index.ts',
    '^(\\.{1,2}/.*)\\.js$': '$1',
  },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true }] },
  testTimeout: 30000,
};
