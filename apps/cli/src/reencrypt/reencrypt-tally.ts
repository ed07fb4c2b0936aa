import type { ValueOutcome } from './value-reencryptor.js';

/** Failure details kept per run; counts by code are always complete. */
const MAX_FAILURES = 100;

export interface ReencryptFailure {
  /** Where the value is: `id=42 column=email`, `line 17 field card.number`. */
  location: string;
  code: string;
  reason: string;
  keyId?: string;
}

export interface TallyData {
  values: number;
  rewritten: number;
  alreadyCurrent: number;
  /** `--dry-run`: values that a real run would rewrite. */
  stale: number;
  changedMeanwhile: number;
  failed: number;
  /** Key id → ciphertexts using it once the run is done. */
  keys: Record<string, number>;
  unreadable: number;
  failuresByCode: Record<string, number>;
  failures: ReencryptFailure[];
}

/** Running counts of a re-encryption job; saved in its checkpoint so a resumed run reports the whole job. */
export class ReencryptTally {
  readonly data: TallyData;

  constructor(data?: TallyData) {
    this.data = data
      ? structuredClone(data)
      : {
          values: 0,
          rewritten: 0,
          alreadyCurrent: 0,
          stale: 0,
          changedMeanwhile: 0,
          failed: 0,
          keys: {},
          unreadable: 0,
          failuresByCode: {},
          failures: [],
        };
  }

  /** A value whose outcome is final (for a rewrite: the new value was stored). */
  add(outcome: ValueOutcome, location: string): void {
    const data = this.data;
    data.values++;
    switch (outcome.kind) {
      case 'current':
        data.alreadyCurrent++;
        break;
      case 'rewritten':
        data.rewritten++;
        break;
      case 'stale':
        data.stale++;
        break;
      case 'failed':
        data.failed++;
        data.failuresByCode[outcome.code] = (data.failuresByCode[outcome.code] ?? 0) + 1;
        if (data.failures.length < MAX_FAILURES) {
          data.failures.push({
            location,
            code: outcome.code,
            reason: outcome.reason,
            ...(outcome.keyId ? { keyId: outcome.keyId } : {}),
          });
        }
        if (!outcome.keyId) data.unreadable++;
        break;
    }
    if (outcome.keyId) this.useKey(outcome.keyId);
  }

  /**
   * A value the application changed between our read and our write: left as the application wrote it.
   * `currentKeyId` is the key of what is stored now (undefined when the row is gone or holds no ciphertext).
   */
  changedMeanwhile(currentKeyId: string | undefined): void {
    this.data.changedMeanwhile++;
    if (currentKeyId) {
      this.data.values++;
      this.useKey(currentKeyId);
    }
  }

  private useKey(keyId: string): void {
    this.data.keys[keyId] = (this.data.keys[keyId] ?? 0) + 1;
  }
}
