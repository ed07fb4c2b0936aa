import type { KeyPairAlgorithm, KeyPairState } from './key-store.interface.js';

/** What `listKeyPairs()` reveals about a key pair: identity, algorithm and lifecycle, never the private key. */
export interface KeyPairMetadata {
  /** RFC 7638 thumbprint of the public key; the JWE `kid`. */
  kid: string;
  alg: KeyPairAlgorithm;
  /** For `RSA-OAEP-256`. */
  rsaKeySize?: number;
  /** For `ECDH-ES+A256KW`. */
  crv?: string;
  state: KeyPairState;
  createdAt: Date;
  /** Milliseconds since `createdAt`. */
  ageMs: number;
}
