import type { ChildProcess } from 'node:child_process';
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { chmodSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, truncateSync, utimesSync, writeFileSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { eventually, sampleRing } from '../../../../test/support/key-store-contract.js';
import { transpileLibraryModule } from '../../../../test/support/transpile-library.js';
import { EncryptionConfigError, EncryptionError, KeyStoreCorruptError, KeyStoreLockTimeoutError } from '../errors/encryption.errors.js';
import type { StoredKeyRing } from '../interfaces/key-store.interface.js';
import { FileKeyStore } from './file-key.store.js';

/** The ring the crash-test children write for a revision: big enough that a write takes a while. */
function crashRing(revision: number): StoredKeyRing {
  return {
    revision,
    keys: Array.from({ length: 300 }, (_, i) => ({
      id: `k${i}-r${revision}`,
      version: i + 1,
      createdAt: '2026-01-01T00:00:00.000Z',
      state: i === 0 ? 'active' : 'decrypt-only',
      wrappedKey: createHash('sha256').update(`${revision}:${i}`).digest('hex').repeat(4),
    })),
  };
}

/** The same function for the child processes, which run plain JavaScript. */
const CRASH_RING_JS = `
import { createHash } from 'node:crypto';
export const crashRing = (revision) => ({
  revision,
  keys: Array.from({ length: 300 }, (_, i) => ({
    id: 'k' + i + '-r' + revision,
    version: i + 1,
    createdAt: '2026-01-01T00:00:00.000Z',
    state: i === 0 ? 'active' : 'decrypt-only',
    wrappedKey: createHash('sha256').update(revision + ':' + i).digest('hex').repeat(4),
  })),
});`;

describe('FileKeyStore', () => {
  let dir: string;
  let path: string;
  const stores: FileKeyStore[] = [];
  const open = (options: Partial<ConstructorParameters<typeof FileKeyStore>[0] & object> = {}) => {
    const store = new FileKeyStore({ path, ...options });
    stores.push(store);
    return store;
  };

  beforeEach(() => {
    dir = mkdtempSync(join(tmpdir(), 'file-key-store-'));
    path = join(dir, 'keys', 'key-ring.json');
  });

  afterEach(async () => {
    for (const store of stores.splice(0)) await store.close();
    rmSync(dir, { recursive: true, force: true });
  });

  describe('files on disk', () => {
    it('creates the directory (0700) and writes the file with mode 0600, also over a more open file', async () => {
      const store = open();
      await store.save(sampleRing(1), 0);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      expect(statSync(join(dir, 'keys')).mode & 0o777).toBe(0o700);

      chmodSync(path, 0o644);
      await store.heartbeat({ instanceId: 'a', revision: 1, at: '2026-01-01T00:00:00.000Z' }, 1_000);
      expect(statSync(path).mode & 0o777).toBe(0o600);
      await store.save(sampleRing(2), 1);
      expect(statSync(path).mode & 0o777).toBe(0o600);
    });

    it('stores one self-describing JSON document and leaves no lock or temp file behind', async () => {
      const store = open();
      await store.save(sampleRing(1), 0);
      await store.addUsage([{ keyId: 'k', encryptions: 1, decryptions: 0, lastUsedAt: 5 }]);
      const document = JSON.parse(readFileSync(path, 'utf8'));
      expect(document).toMatchObject({ format: 'nestjs-encryption/key-store', version: 1, ring: sampleRing(1) });
      expect(document.usage).toEqual({ k: { encryptions: 1, decryptions: 0, lastUsedAt: 5 } });
      expect(readdirSync(join(dir, 'keys'))).toEqual(['key-ring.json']);
    });

    it('rejects a missing path and bad timing options with EncryptionConfigError', () => {
      expect(() => new FileKeyStore('')).toThrow(EncryptionConfigError);
      expect(() => new FileKeyStore({ path: 'x', lockTimeoutMs: 0 })).toThrow(
        'Invalid key store options: lockTimeoutMs must be a positive number',
      );
      expect(() => new FileKeyStore({ path: 'x', staleLockMs: Number.NaN })).toThrow(EncryptionConfigError);
      expect(new FileKeyStore('relative/ring.json').path).toBe(join(process.cwd(), 'relative/ring.json'));
    });
  });

  describe('a corrupt or truncated file', () => {
    const valid = () =>
      JSON.stringify({ format: 'nestjs-encryption/key-store', version: 1, ring: sampleRing(3), usage: {}, instances: {} });
    const cases: Array<[string, () => string | Buffer, RegExp]> = [
      ['truncated JSON', () => valid().slice(0, Math.floor(valid().length / 2)), /not valid JSON, possibly truncated/],
      ['an empty file', () => '', /the file is empty/],
      ['binary garbage', () => Buffer.from([0xff, 0x00, 0x13, 0x37, 0x80]), /not valid JSON/],
      ['JSON of another kind', () => '{"revision":1,"keys":[]}', /not a nestjs-encryption key store file/],
      ['an unknown file version', () => valid().replace('"version":1', '"version":9'), /unsupported file version 9/],
      ['a ring with an invalid key state', () => valid().replace('"state":"active"', '"state":"on-fire"'), /key 1 has an invalid state/],
      ['a ring without keys', () => valid().replace(/"keys":\[.*\]\}/, '"keys":7}'), /keys is not an array/],
      ['invalid usage totals', () => valid().replace('"usage":{}', '"usage":{"k":{"encryptions":"many"}}'), /invalid usage totals/],
    ];

    it.each(cases)('%s: load throws KeyStoreCorruptError; every write refuses and leaves the bytes unchanged', async (_, content, reason) => {
      mkdirSync(join(dir, 'keys'));
      writeFileSync(path, content(), { mode: 0o600 });
      const before = readFileSync(path);
      const store = open();

      const error = await store.load().catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyStoreCorruptError);
      expect(error).toBeInstanceOf(EncryptionError);
      expect((error as KeyStoreCorruptError).code).toBe('KEY_STORE_CORRUPT');
      expect((error as Error).message).toMatch(reason);
      expect((error as Error).message).toContain(path);
      expect((error as Error).message).toContain("won't be overwritten");

      await expect(store.save(sampleRing(1), 0)).rejects.toThrow(KeyStoreCorruptError);
      await expect(store.save(sampleRing(4), 3)).rejects.toThrow(KeyStoreCorruptError);
      await expect(store.heartbeat({ instanceId: 'a', revision: 1, at: 'now' }, 1_000)).rejects.toThrow(KeyStoreCorruptError);
      await expect(store.addUsage([{ keyId: 'k', encryptions: 1, decryptions: 1, lastUsedAt: 1 }])).rejects.toThrow(
        KeyStoreCorruptError,
      );
      expect(readFileSync(path).equals(before)).toBe(true);
      // The lock was released and no temp file was left: a repaired file can be written again.
      expect(readdirSync(join(dir, 'keys'))).toEqual(['key-ring.json']);
    });

    it('never quotes the file content in the error', async () => {
      mkdirSync(join(dir, 'keys'));
      writeFileSync(path, '{"format":"nestjs-encryption/key-store","version":1,"ring":{"revision":1,"keys":[{"wrappedKey":"SECRET-WRAPPED');
      const error = (await open().load().catch((e: unknown) => e)) as Error;
      expect(error).toBeInstanceOf(KeyStoreCorruptError);
      expect(error.message).not.toContain('SECRET');
      expect(String(error.cause ?? '')).not.toContain('SECRET');
    });

    it('a file truncated after a successful save is detected, not silently treated as empty', async () => {
      const store = open();
      await store.save(sampleRing(1), 0);
      truncateSync(path, 40);
      await expect(open().load()).rejects.toThrow(KeyStoreCorruptError);
      truncateSync(path, 0);
      await expect(open().load()).rejects.toThrow(/the file is empty/);
    });
  });

  describe('locking', () => {
    const lockPath = () => `${path}.lock`;
    const writeLock = (owner: object | string, ageMs = 0) => {
      mkdirSync(join(dir, 'keys'), { recursive: true });
      writeFileSync(lockPath(), typeof owner === 'string' ? owner : JSON.stringify(owner));
      if (ageMs) {
        const then = new Date(Date.now() - ageMs);
        utimesSync(lockPath(), then, then);
      }
    };
    const deadPid = () => spawnSync(process.execPath, ['-e', '0']).pid!;

    it('takes over at once a lock whose owner process on this host is gone', async () => {
      writeLock({ pid: deadPid(), hostname: (await import('node:os')).hostname(), token: 'dead' });
      const started = Date.now();
      await expect(open().save(sampleRing(1), 0)).resolves.toBe(true);
      expect(Date.now() - started).toBeLessThan(1_000);
      expect(existsSync(lockPath())).toBe(false);
    });

    it('waits for a live owner, then fails with KeyStoreLockTimeoutError, writing nothing and keeping the lock', async () => {
      const store = open();
      await store.save(sampleRing(1), 0);
      const owner = JSON.stringify({ pid: process.pid, hostname: (await import('node:os')).hostname(), token: 'live' });
      writeLock(owner);
      const started = Date.now();
      const error = await open({ lockTimeoutMs: 300 }).save(sampleRing(2), 1).catch((e: unknown) => e);
      expect(error).toBeInstanceOf(KeyStoreLockTimeoutError);
      expect((error as KeyStoreLockTimeoutError).code).toBe('KEY_STORE_LOCK_TIMEOUT');
      expect((error as Error).message).toBe(`The key store lock ${lockPath()} is still held by another writer after 300 ms`);
      expect(Date.now() - started).toBeGreaterThanOrEqual(290);
      expect(readFileSync(lockPath(), 'utf8')).toBe(owner);
      await expect(store.load()).resolves.toStrictEqual(sampleRing(1));
    });

    it('a writer waiting on a live lock proceeds as soon as it is released', async () => {
      writeLock({ pid: process.pid, hostname: (await import('node:os')).hostname(), token: 'live' });
      const saving = open().save(sampleRing(1), 0);
      await sleep(150);
      rmSync(lockPath());
      await expect(saving).resolves.toBe(true);
    });

    it('takes over a live owner’s lock older than staleLockMs (a hung writer)', async () => {
      writeLock({ pid: process.pid, hostname: (await import('node:os')).hostname(), token: 'hung' }, 5_000);
      await expect(open({ staleLockMs: 1_000, lockTimeoutMs: 500 }).save(sampleRing(1), 0)).resolves.toBe(true);
    });

    it('an unreadable lock (writer killed before filling it) is taken over once it is a few seconds old, not before', async () => {
      writeLock('');
      await expect(open({ lockTimeoutMs: 300 }).save(sampleRing(1), 0)).rejects.toThrow(KeyStoreLockTimeoutError);
      writeLock('', 3_000);
      await expect(open({ lockTimeoutMs: 300 }).save(sampleRing(1), 0)).resolves.toBe(true);
    });

    it('a lock from another host is not judged by PID, only by age', async () => {
      writeLock({ pid: deadPid(), hostname: 'some-other-host', token: 'remote' });
      await expect(open({ lockTimeoutMs: 300 }).save(sampleRing(1), 0)).rejects.toThrow(KeyStoreLockTimeoutError);
    });
  });

  describe('across processes', () => {
    let childDir: string;
    let entry: string;
    const children: ChildProcess[] = [];

    beforeAll(() => {
      childDir = mkdtempSync(join(tmpdir(), 'file-key-store-child-'));
      entry = transpileLibraryModule('stores/file-key.store.ts', childDir);
      writeFileSync(join(childDir, 'crash-ring.js'), CRASH_RING_JS);
      writeFileSync(
        join(childDir, 'save-loop.js'),
        `import { FileKeyStore } from ${JSON.stringify(entry)};
import { crashRing } from './crash-ring.js';
const store = new FileKeyStore({ path: process.argv[2] });
let revision = (await store.load())?.revision ?? 0;
process.stdout.write('ready\\n');
for (;;) {
  if (await store.save(crashRing(revision + 1), revision)) revision++;
  else revision = (await store.load()).revision;
}`,
      );
      writeFileSync(
        join(childDir, 'increment.js'),
        `import { FileKeyStore } from ${JSON.stringify(entry)};
const store = new FileKeyStore({ path: process.argv[2] });
let won = 0;
while (won < Number(process.argv[3])) {
  const current = await store.load();
  const revision = current?.revision ?? 0;
  const keys = [...(current?.keys ?? []), { id: process.pid + '-' + won, version: revision + 1, createdAt: new Date().toISOString(), state: 'decrypt-only' }];
  if (await store.save({ revision: revision + 1, keys }, revision)) won++;
}
process.stdout.write(String(won));`,
      );
    });

    afterAll(() => rmSync(childDir, { recursive: true, force: true }));

    afterEach(() => {
      for (const child of children.splice(0)) child.kill('SIGKILL');
    });

    const run = (script: string, ...args: string[]) => {
      const child = spawn(process.execPath, [join(childDir, script), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
      children.push(child);
      return child;
    };

    it('writers SIGKILLed at random moments of save loops leave the old or the new ring, never a broken file', async () => {
      const store = open();
      const writers = new Set<ChildProcess>();
      const saving = new Set<ChildProcess>();
      const startWriter = () => {
        const child = run('save-loop.js', path);
        writers.add(child);
        child.stdout!.once('data', () => saving.add(child));
        child.once('exit', () => {
          writers.delete(child);
          saving.delete(child);
        });
      };
      // Two writers race in tight save loops; one of them is killed at a random moment, and replaced.
      startWriter();
      startWriter();
      await eventually(() => expect(existsSync(path)).toBe(true), 20_000);
      let lastRevision = 0;
      let killedHoldingLock = 0;
      for (let round = 0; round < 30; round++) {
        // Kill only writers already in their save loop, at a random moment of it.
        await eventually(() => expect(saving.size).toBeGreaterThan(0), 20_000);
        await sleep(5 + Math.random() * 50);
        const victim = [...saving][Math.floor(Math.random() * saving.size)];
        const exited = new Promise((resolve) => victim.once('exit', resolve));
        victim.kill('SIGKILL');
        await exited;
        const lock = await readFile(`${path}.lock`, 'utf8').catch(() => '');
        if (lock.includes(`"pid":${victim.pid},`)) killedHoldingLock++;

        const ring = await store.load();
        expect(ring).toBeDefined();
        expect(ring!.revision).toBeGreaterThanOrEqual(lastRevision);
        expect(ring).toStrictEqual(crashRing(ring!.revision));
        lastRevision = ring!.revision;
        startWriter();
      }
      for (const child of writers) child.kill('SIGKILL');
      // Kills landed inside saves, so the survivors had to take over dead writers' locks...
      expect(killedHoldingLock).toBeGreaterThan(0);
      // ...and they kept making progress.
      expect(lastRevision).toBeGreaterThan(5);
      await eventually(() => expect(writers.size).toBe(0));
      // A last save cleans up whatever the dead writers left.
      const final = (await store.load())!.revision;
      await expect(store.save(crashRing(final + 1), final)).resolves.toBe(true);
      expect(readdirSync(join(dir, 'keys'))).toEqual(['key-ring.json']);
      expect(statSync(path).mode & 0o777).toBe(0o600);
    }, 60_000);

    it('compare-and-set holds across processes: 4 processes x 15 read-modify-write increments lose no update', async () => {
      const outputs = await Promise.all(
        Array.from({ length: 4 }, () => {
          const child = run('increment.js', path, '15');
          let out = '';
          child.stdout!.on('data', (chunk: Buffer) => (out += chunk.toString()));
          return new Promise<string>((resolve, reject) =>
            child.once('exit', (code) => (code === 0 ? resolve(out) : reject(new Error(`child failed (${code})`)))),
          );
        }),
      );
      expect(outputs).toEqual(['15', '15', '15', '15']);
      const ring = (await open().load())!;
      expect(ring.revision).toBe(60);
      expect(ring.keys).toHaveLength(60);
      expect(new Set(ring.keys.map((key) => key.id)).size).toBe(60);
      expect(ring.keys.map((key) => key.version)).toEqual(Array.from({ length: 60 }, (_, i) => i + 1));
    }, 60_000);

    it('watch hears a save made by another process', async () => {
      const heard: number[] = [];
      await open({ watchIntervalMs: 60_000 }).watch((revision) => heard.push(revision));
      const child = run('increment.js', path, '2');
      await new Promise((resolve) => child.once('exit', resolve));
      await eventually(() => expect(heard.at(-1)).toBe(2));
    });
  });

  describe('watch', () => {
    it('hears another instance through file system events alone (poll interval far away)', async () => {
      const heard: number[] = [];
      await open({ watchIntervalMs: 60_000 }).watch((revision) => heard.push(revision));
      await open().save(sampleRing(1), 0);
      await eventually(() => expect(heard).toEqual([1]), 2_000);
    });

    it('ignores writes that do not change the ring (heartbeats, usage) and stops on close()', async () => {
      const heard: number[] = [];
      const watcher = open({ watchIntervalMs: 50 });
      await watcher.watch((revision) => heard.push(revision));
      const writer = open();
      await writer.save(sampleRing(1), 0);
      await eventually(() => expect(heard).toEqual([1]));
      await writer.heartbeat({ instanceId: 'a', revision: 1, at: 'x' }, 1_000);
      await writer.addUsage([{ keyId: 'k', encryptions: 1, decryptions: 0, lastUsedAt: 1 }]);
      await sleep(300);
      expect(heard).toEqual([1]);
      await watcher.close();
      await writer.save(sampleRing(2), 1);
      await sleep(300);
      expect(heard).toEqual([1]);
    });
  });
});
