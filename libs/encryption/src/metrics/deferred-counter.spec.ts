import { Counter, Registry } from 'prom-client';

import { DeferredCounter } from './deferred-counter.js';

describe('DeferredCounter', () => {
  let registry: Registry;
  beforeEach(() => {
    registry = new Registry();
  });

  const counter = (collect?: () => void) =>
    new Counter({ name: 'test_total', help: 'h', labelNames: ['operation', 'result'], registers: [registry], collect });

  it('shows the totals of every label set on a scrape, as direct increments would', async () => {
    const deferred = new DeferredCounter(counter());
    deferred.inc('encrypt success', { operation: 'encrypt', result: 'success' });
    deferred.inc('encrypt success', { operation: 'encrypt', result: 'success' }, 4);
    deferred.inc('decrypt failure', { operation: 'decrypt', result: 'failure' });
    const text = await registry.metrics();
    expect(text).toContain('test_total{operation="encrypt",result="success"} 5');
    expect(text).toContain('test_total{operation="decrypt",result="failure"} 1');

    // Later increments add to what the last scrape handed over; nothing is counted twice.
    deferred.inc('encrypt success', { operation: 'encrypt', result: 'success' }, 2);
    const again = await registry.metrics();
    expect(again).toContain('test_total{operation="encrypt",result="success"} 7');
    expect(again).toContain('test_total{operation="decrypt",result="failure"} 1');
  });

  it('hands pending increments over when the counter is read directly too', async () => {
    const metric = counter();
    new DeferredCounter(metric).inc('x', { operation: 'encrypt', result: 'success' }, 3);
    expect((await metric.get()).values).toEqual([{ value: 3, labels: { operation: 'encrypt', result: 'success' } }]);
  });

  it("still runs the counter's own collect hook", async () => {
    let collected = 0;
    const deferred = new DeferredCounter(counter(() => collected++));
    deferred.inc('x', { operation: 'encrypt', result: 'success' });
    await registry.metrics();
    expect(collected).toBe(1);
  });
});
