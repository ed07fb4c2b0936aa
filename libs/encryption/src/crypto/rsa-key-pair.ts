import type { KeyObject } from 'node:crypto';
import { generateKeyPair } from 'node:crypto';
import { promisify } from 'node:util';

import type { JWK } from 'jose';
import { calculateJwkThumbprint, exportJWK } from 'jose';

const generateKeyPairAsync = promisify(generateKeyPair);

/** An RSA key pair in the two forms other systems expect, identified by its RFC 7638 thumbprint. */
export interface RsaKeyPair {
  /** JWK thumbprint (SHA-256, base64url) of the public key; also the `kid` of both JWKs. */
  keyId: string;
  publicKeyPem: string;
  privateKeyPem: string;
  publicJwk: JWK;
  privateJwk: JWK;
}

export async function generateRsaKeyPair(modulusLength: number): Promise<RsaKeyPair> {
  const { publicKey, privateKey } = (await generateKeyPairAsync('rsa', { modulusLength, publicExponent: 0x10001 })) as {
    publicKey: KeyObject;
    privateKey: KeyObject;
  };
  const publicJwk = await exportJWK(publicKey);
  const keyId = await calculateJwkThumbprint(publicJwk, 'sha256');
  const jwkFields = { kid: keyId, alg: 'RSA-OAEP-256', use: 'enc' };
  return {
    keyId,
    publicKeyPem: publicKey.export({ type: 'spki', format: 'pem' }).toString(),
    privateKeyPem: privateKey.export({ type: 'pkcs8', format: 'pem' }).toString(),
    publicJwk: { ...publicJwk, ...jwkFields },
    privateJwk: { ...(await exportJWK(privateKey)), ...jwkFields },
  };
}
