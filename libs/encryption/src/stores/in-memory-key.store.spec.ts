import { sampleRing } from '../../../../test/support/key-store-contract.js';
import { InMemoryKeyStore } from './in-memory-key.store.js';

/** The shared behaviour is in test/key-stores.e2e-spec.ts; this covers what only the in-memory store has. */
describe('InMemoryKeyStore', () => {
  it('expires heartbeats on its injected clock, exactly at the TTL', async () => {
    let now = 1_000;
    const store = new InMemoryKeyStore({ clock: { now: () => now } });
    await store.heartbeat({ instanceId: 'a', revision: 1, at: 't0' }, 500);
    now = 1_499;
    await expect(store.instances()).resolves.toEqual([{ instanceId: 'a', revision: 1, at: 't0' }]);
    now = 1_500;
    await expect(store.instances()).resolves.toEqual([]);
  });

  it('tells every watcher of a shared instance about a save, after the saver resumes', async () => {
    const store = new InMemoryKeyStore();
    const heard: string[] = [];
    await store.watch((revision) => heard.push(`a${revision}`));
    await store.watch((revision) => heard.push(`b${revision}`));
    const saving = store.save(sampleRing(1), 0);
    expect(heard).toEqual([]);
    await saving;
    await Promise.resolve();
    expect(heard).toEqual(['a1', 'b1']);
  });

  it('close() keeps the ring for the other holders of the instance', async () => {
    const store = new InMemoryKeyStore();
    await store.save(sampleRing(1), 0);
    await store.close();
    await expect(store.load()).resolves.toStrictEqual(sampleRing(1));
  });
});
