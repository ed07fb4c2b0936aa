/**
 * Messages of field-level encryption. A rejection names the field and the reason, never the value:
 * neither the ciphertext nor any plaintext reaches a response or a log.
 */
export const FIELD_MESSAGES = {
  DECORATOR_TARGET: (property: string) =>
    `@Encrypted() applies to instance properties, not to methods, accessors or static members ("${property}")`,
  INVALID_FIELD_CONTEXT: '@Encrypted({ context }) must be a string or an object of strings',
  INVALID_COMPRESS: '@Encrypted({ compress }) must be a boolean',
  INVALID_MAX_LENGTH: 'A maximum ciphertext length must be a positive integer',
  NESTING_TOO_DEEP: (limit: number) =>
    `Value nests deeper than ${limit} levels: its @Encrypted() fields can't all be reached`,
  UNDECRYPTABLE: (field: string) => `${subject(field)} could not be decrypted`,
  NOT_A_CIPHERTEXT: (field: string) =>
    field === 'body'
      ? 'Encrypted body must be a JSON object of the form { "ciphertext": "<text>" }'
      : `${subject(field)} must be a ciphertext string`,
  WRONG_TYPE: (field: string, expected: string) => `${subject(field)} does not decrypt to ${expected}`,
  TOO_LONG: (field: string, limit: number) => `${subject(field)} exceeds the maximum length of ${limit} characters`,
  DECOMPRESSION_LIMIT: (field: string) => `${subject(field)} decompresses beyond the allowed size`,
} as const;

function subject(field: string): string {
  return field === 'body' ? 'Encrypted body' : `Encrypted field "${field}"`;
}
