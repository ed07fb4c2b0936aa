/**
 * Whether a result of a usually-synchronous step is still pending. Duck-typed rather than
 * `instanceof Promise`: a promise made by Node itself (zlib's callbacks through `promisify`) belongs to
 * another realm under a VM-based test runner. No decrypted value can be mistaken for one: JSON has no
 * functions.
 */
export function isPromiseLike<T>(value: T | PromiseLike<T>): value is PromiseLike<T> {
  return typeof (value as { then?: unknown } | null | undefined)?.then === 'function';
}
