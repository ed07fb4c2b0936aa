import type { ScanRecord } from './scan-ledger.js';
import { dataUsageOf } from './scan-ledger.js';

function scan(
  source: string,
  keys: Record<string, number>,
  coveredKeyIds: string[],
  finishedAt = '2026-01-02T00:00:00.000Z',
): ScanRecord {
  return {
    format: 'nestjs-encryption/scan',
    version: 1,
    source,
    sourceId: source,
    kind: 'postgres',
    startedAt: '2026-01-01T00:00:00.000Z',
    finishedAt,
    dryRun: false,
    activeKeyId: 'k3',
    coveredKeyIds,
    values: Object.values(keys).reduce((a, b) => a + b, 0),
    keys,
    unreadable: 0,
  };
}

describe('dataUsageOf', () => {
  const previous = { id: 'k1', state: 'decrypt-only' };

  it('is unknown before any scan, and for a key some source was scanned while it could still encrypt', () => {
    expect(dataUsageOf(previous, [])).toMatchObject({ status: 'unknown', summary: 'no source scanned yet' });
    expect(dataUsageOf(previous, [scan('a', { k3: 5 }, ['k1']), scan('b', { k3: 2 }, [])])).toMatchObject({
      status: 'unknown',
      summary: 'b last scanned while this key could still encrypt',
    });
  });

  it('is in use when any source still has values, with per-source counts when there are several', () => {
    expect(dataUsageOf(previous, [scan('a', { k1: 2 }, ['k1']), scan('b', { k1: 1 }, ['k1'])])).toMatchObject({
      status: 'in-use',
      values: 3,
      summary: '3 values in a (2), b (1)',
    });
    expect(dataUsageOf(previous, [scan('a', { k1: 1 }, ['k1'])]).summary).toBe('1 value in a');
  });

  it('is unused only when every source was scanned after the key stopped encrypting and none uses it', () => {
    const usage = dataUsageOf(previous, [
      scan('a', { k3: 5 }, ['k1'], '2026-01-03T00:00:00.000Z'),
      scan('b', {}, ['k1', 'k2']),
    ]);
    expect(usage).toMatchObject({
      status: 'unused',
      values: 0,
      summary: 'no values in 2 scanned sources',
      asOf: '2026-01-02T00:00:00.000Z',
    });
  });

  it('reports the active key as in use whatever the scans say', () => {
    expect(dataUsageOf({ id: 'k3', state: 'active' }, [])).toMatchObject({ status: 'in-use', summary: 'active key' });
    expect(dataUsageOf({ id: 'k3', state: 'active' }, [scan('a', { k3: 5 }, ['k1'])])).toMatchObject({
      status: 'in-use',
      values: 5,
    });
  });
});
