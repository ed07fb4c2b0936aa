import { randomBytes } from 'node:crypto';
import type { FSWatcher } from 'node:fs';
import { watch as watchDirectory } from 'node:fs';
import type { FileHandle } from 'node:fs/promises';
import { access, constants, link, mkdir, open, readdir, readFile, rename, stat, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, resolve } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

import { EncryptionConfigError, KeyStoreCorruptError, KeyStoreLockTimeoutError } from '../errors/encryption.errors.js';
import { MESSAGES } from '../errors/encryption.messages.js';
import type { EncryptionClock } from '../interfaces/encryption-module-options.interface.js';
import type {
  InstanceHeartbeat,
  KeyStore,
  KeyUsageDelta,
  StoredKeyRing,
  StoredKeyUsage,
} from '../interfaces/key-store.interface.js';
import { assertSaveable, mergeUsageDeltas, notify, parseStoredKeyRing } from './key-store.utils.js';

export interface FileKeyStoreOptions {
  /** The JSON file holding the ring, usage totals and heartbeats. Its directory is created (mode 0700) on first write. */
  path: string;
  /** How long a write waits for another writer's lock before failing with `KeyStoreLockTimeoutError`. @default 10000 */
  lockTimeoutMs?: number;
  /**
   * A lock older than this is taken over even if its owner still runs (a hung writer). A lock whose owner
   * process on this host is gone is taken over at once. @default 30000
   */
  staleLockMs?: number;
  /** Fallback poll of the file for `watch`, when file system events are missed (network file systems). @default 1000 */
  watchIntervalMs?: number;
  /** Time source for heartbeat expiry. @default the system clock (`Date.now()`) */
  clock?: EncryptionClock;
}

/** The file's layout. `format` and `version` let a future layout be told apart from a corrupt file. */
interface KeyStoreDocument {
  format: typeof FORMAT;
  version: 1;
  ring?: StoredKeyRing;
  usage: Record<string, StoredKeyUsage>;
  instances: Record<string, { beat: InstanceHeartbeat; expiresAt: number }>;
}

interface LockOwner {
  pid: number;
  hostname: string;
  token: string;
}

const FORMAT = 'nestjs-encryption/key-store';
const FILE_MODE = 0o600;
const DIRECTORY_MODE = 0o700;
/** A lock file without readable content (see `createLock`'s fallback) is a writer killed before filling it, once this old. */
const UNREADABLE_LOCK_GRACE_MS = 2_000;

/**
 * Keeps the key ring in one JSON file: the embedded default for a single host. Usage totals and
 * instance heartbeats live in the same file, so processes on the host share them.
 *
 * - Writes are atomic: a temporary file in the same directory is written, fsynced and renamed over the
 *   file, then the directory is fsynced. A crash leaves the old or the new file, never a mix. The file is
 *   mode 0600.
 * - Compare-and-set holds within a process (writes are queued) and across processes on the host: each
 *   write takes an exclusive lock file (`<path>.lock`, created atomically with its owner's PID, host and
 *   token) and re-reads the file under it. A lock left by a dead process on this host is taken over at
 *   once, any other after `staleLockMs`. Temp files of crashed writers are removed by the next write.
 * - A file that can't be read as a key store throws `KeyStoreCorruptError` and is never overwritten.
 * - `watch` uses file system events on the directory plus a slow poll.
 */
export class FileKeyStore implements KeyStore {
  readonly path: string;
  private readonly directory: string;
  private readonly lockPath: string;
  private readonly tempPrefix: string;
  private readonly lockTimeoutMs: number;
  private readonly staleLockMs: number;
  private readonly watchIntervalMs: number;
  private readonly clock: EncryptionClock;
  /** Writes of this instance run one at a time; the lock file orders them against everyone else. */
  private writeQueue: Promise<unknown> = Promise.resolve();
  private readonly watchers = new Set<Watcher>();
  private hardLinks = true;

  constructor(options: FileKeyStoreOptions | string) {
    const { path, ...rest } = typeof options === 'string' ? { path: options } : options;
    if (typeof path !== 'string' || path.length === 0) {
      throw new EncryptionConfigError(MESSAGES.INVALID_KEY_STORE_OPTION('FileKeyStore needs a path'));
    }
    this.path = resolve(path);
    this.directory = dirname(this.path);
    this.lockPath = `${this.path}.lock`;
    this.tempPrefix = `.${basename(this.path)}.`;
    this.lockTimeoutMs = positive(rest.lockTimeoutMs, 10_000, 'lockTimeoutMs');
    this.staleLockMs = positive(rest.staleLockMs, 30_000, 'staleLockMs');
    this.watchIntervalMs = positive(rest.watchIntervalMs, 1_000, 'watchIntervalMs');
    this.clock = rest.clock ?? { now: () => Date.now() };
  }

  async load(): Promise<StoredKeyRing | undefined> {
    return (await this.read())?.ring;
  }

  async save(ring: StoredKeyRing, expectedRevision: number): Promise<boolean> {
    assertSaveable(ring, expectedRevision);
    const copy = structuredClone(ring);
    return this.update((document) => {
      if ((document.ring?.revision ?? 0) !== expectedRevision) return false;
      document.ring = copy;
      return true;
    });
  }

  async watch(onChange: (revision: number) => void): Promise<() => Promise<void>> {
    await mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE });
    const watcher = new Watcher(this.path, async () => (await this.read())?.ring?.revision, onChange);
    await watcher.start(this.watchIntervalMs);
    this.watchers.add(watcher);
    return async () => {
      this.watchers.delete(watcher);
      watcher.stop();
    };
  }

  async heartbeat(beat: InstanceHeartbeat, ttlMs: number): Promise<void> {
    const entry = { beat: structuredClone(beat), expiresAt: this.clock.now() + ttlMs };
    await this.update((document) => {
      const now = this.clock.now();
      for (const [id, old] of Object.entries(document.instances)) {
        if (old.expiresAt <= now) delete document.instances[id];
      }
      document.instances[beat.instanceId] = entry;
      return true;
    });
  }

  async instances(): Promise<InstanceHeartbeat[]> {
    const now = this.clock.now();
    return Object.values((await this.read())?.instances ?? {})
      .filter((entry) => entry.expiresAt > now)
      .map((entry) => entry.beat);
  }

  async addUsage(deltas: KeyUsageDelta[]): Promise<void> {
    const merged = mergeUsageDeltas(deltas);
    if (merged.length === 0) return;
    await this.update((document) => {
      for (const [keyId, delta] of merged) {
        const total = document.usage[keyId] ?? { encryptions: 0, decryptions: 0, lastUsedAt: 0 };
        document.usage[keyId] = {
          encryptions: total.encryptions + delta.encryptions,
          decryptions: total.decryptions + delta.decryptions,
          lastUsedAt: Math.max(total.lastUsedAt, delta.lastUsedAt),
        };
      }
      return true;
    });
  }

  async loadUsage(): Promise<Record<string, StoredKeyUsage>> {
    return (await this.read())?.usage ?? {};
  }

  /** The directory must exist (as the first write would create it) and be readable and writable. */
  async ping(): Promise<void> {
    await mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE });
    await access(this.directory, constants.R_OK | constants.W_OK);
  }

  async close(): Promise<void> {
    for (const watcher of this.watchers) watcher.stop();
    this.watchers.clear();
  }

  /** The parsed file, `undefined` when it doesn't exist. */
  private async read(): Promise<KeyStoreDocument | undefined> {
    let text: string;
    try {
      text = await readFile(this.path, 'utf8');
    } catch (error) {
      if (isCode(error, 'ENOENT')) return undefined;
      throw error;
    }
    return parseDocument(text, this.path);
  }

  /**
   * Read-modify-write under the lock. `change` edits the document in place and says whether to write it;
   * a corrupt file throws before `change` runs, so it is never replaced.
   */
  private update(change: (document: KeyStoreDocument) => boolean): Promise<boolean> {
    const run = this.writeQueue.then(async () => {
      await mkdir(this.directory, { recursive: true, mode: DIRECTORY_MODE });
      const release = await this.lock();
      try {
        const document = (await this.read()) ?? { format: FORMAT, version: 1, usage: {}, instances: {} };
        if (!change(document)) return false;
        await this.removeOrphanedTempFiles();
        await this.writeAtomically(JSON.stringify(document));
        return true;
      } finally {
        await release();
      }
    });
    this.writeQueue = run.catch(() => undefined);
    void run.then((written) => written && this.watchers.forEach((watcher) => watcher.check()), () => undefined);
    return run;
  }

  private async writeAtomically(text: string): Promise<void> {
    const temp = `${this.directory}/${this.tempPrefix}${process.pid}.${randomBytes(6).toString('hex')}.tmp`;
    let handle: FileHandle | undefined = await open(temp, 'wx', FILE_MODE);
    try {
      await handle.chmod(FILE_MODE);
      await handle.writeFile(text, 'utf8');
      await handle.sync();
      await handle.close();
      handle = undefined;
      await rename(temp, this.path);
    } catch (error) {
      await handle?.close().catch(() => undefined);
      await unlink(temp).catch(() => undefined);
      throw error;
    }
    await syncDirectory(this.directory);
  }

  /** Temp files are only written under the lock, so any found while holding it belong to a crashed writer. */
  private async removeOrphanedTempFiles(): Promise<void> {
    for (const name of await readdir(this.directory)) {
      if (name.startsWith(this.tempPrefix) && name.endsWith('.tmp')) {
        await unlink(`${this.directory}/${name}`).catch(() => undefined);
      }
    }
  }

  private async lock(): Promise<() => Promise<void>> {
    const owner: LockOwner = { pid: process.pid, hostname: hostname(), token: randomBytes(8).toString('hex') };
    const deadline = Date.now() + this.lockTimeoutMs;
    for (let attempt = 0; ; attempt++) {
      if (await this.createLock(owner)) return () => this.unlock(owner.token);
      if (await this.breakStaleLock()) continue;
      if (Date.now() >= deadline) throw new KeyStoreLockTimeoutError(this.lockPath, this.lockTimeoutMs);
      await sleep(Math.min(2 ** attempt, 50) + Math.random() * 5);
    }
  }

  /**
   * Creates the lock file exclusively, already holding its owner: a filled draft is hard-linked to the
   * lock path, which fails like `O_EXCL` when the lock exists. So a writer killed at any moment leaves
   * either no lock or one that names its (dead) PID. Where hard links aren't supported, falls back to
   * `open(path, 'wx')` and then filling it, and an empty lock is judged by its age.
   */
  private async createLock(owner: LockOwner): Promise<boolean> {
    const content = JSON.stringify(owner);
    if (this.hardLinks) {
      const draft = `${this.directory}/${this.tempPrefix}lock-${owner.pid}-${randomBytes(6).toString('hex')}.tmp`;
      await writeFile(draft, content, { mode: FILE_MODE, flag: 'wx' });
      try {
        await link(draft, this.lockPath);
        return true;
      } catch (error) {
        // ENOENT: the lock holder swept our draft as an orphan; try again.
        if (isCode(error, 'EEXIST') || isCode(error, 'ENOENT')) return false;
        if (!['EPERM', 'ENOTSUP', 'EOPNOTSUPP', 'ENOSYS'].some((code) => isCode(error, code))) throw error;
        this.hardLinks = false;
      } finally {
        await unlink(draft).catch(() => undefined);
      }
    }
    let handle: FileHandle;
    try {
      handle = await open(this.lockPath, 'wx', FILE_MODE);
    } catch (error) {
      if (isCode(error, 'EEXIST')) return false;
      throw error;
    }
    try {
      await handle.writeFile(content);
    } finally {
      await handle.close();
    }
    return true;
  }

  private async unlock(token: string): Promise<void> {
    const current = await readLock(this.lockPath);
    // Only remove our own lock: if it was taken over as stale, it now belongs to someone else.
    if (current?.owner?.token === token) await unlink(this.lockPath).catch(() => undefined);
  }

  /** Removes the lock if its owner is gone; true when the caller should try again at once. */
  private async breakStaleLock(): Promise<boolean> {
    const seen = await readLock(this.lockPath);
    if (!seen) return true;
    if (!this.isStale(seen)) return false;
    // Breakers take turns, so a fresh lock created after one breaker removed the stale one survives.
    const breaker = `${this.lockPath}.break`;
    let handle: FileHandle;
    try {
      handle = await open(breaker, 'wx', FILE_MODE);
    } catch (error) {
      if (!isCode(error, 'EEXIST')) throw error;
      const age = await stat(breaker).then((info) => Date.now() - info.mtimeMs, () => 0);
      if (age > UNREADABLE_LOCK_GRACE_MS) await unlink(breaker).catch(() => undefined);
      return false;
    }
    try {
      await handle.close();
      const again = await readLock(this.lockPath);
      if (again && again.ino === seen.ino && again.mtimeMs === seen.mtimeMs) {
        await unlink(this.lockPath).catch(() => undefined);
      }
    } finally {
      await unlink(breaker).catch(() => undefined);
    }
    return true;
  }

  private isStale(lock: LockFile): boolean {
    const age = Date.now() - lock.mtimeMs;
    if (!lock.owner) return age > Math.min(UNREADABLE_LOCK_GRACE_MS, this.staleLockMs);
    if (lock.owner.hostname === hostname() && !isAlive(lock.owner.pid)) return true;
    return age > this.staleLockMs;
  }
}

/** One `watch` subscription: directory events and a poll, deduplicated by revision. */
class Watcher {
  private lastRevision = 0;
  private lastFile = '';
  private fsWatcher?: FSWatcher;
  private timer?: NodeJS.Timeout;
  private running = false;
  private again = false;
  private stopped = false;

  constructor(
    private readonly path: string,
    private readonly readRevision: () => Promise<number | undefined>,
    private readonly onChange: (revision: number) => void,
  ) {}

  async start(intervalMs: number): Promise<void> {
    this.lastRevision = (await this.readRevision().catch(() => undefined)) ?? 0;
    this.lastFile = await fileIdentity(this.path);
    const fileName = basename(this.path);
    try {
      this.fsWatcher = watchDirectory(dirname(this.path), { persistent: false }, (_event, name) => {
        if (!name || name.toString() === fileName) this.check();
      });
      this.fsWatcher.on('error', () => this.fsWatcher?.close());
    } catch {
      // No file system events here: the poll below still sees every change.
    }
    this.timer = setInterval(() => this.check(), intervalMs).unref();
  }

  check(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    void this.compare().finally(() => {
      this.running = false;
      if (this.again) {
        this.again = false;
        this.check();
      }
    });
  }

  stop(): void {
    this.stopped = true;
    this.fsWatcher?.close();
    clearInterval(this.timer);
  }

  private async compare(): Promise<void> {
    const identity = await fileIdentity(this.path);
    if (identity === this.lastFile) return;
    this.lastFile = identity;
    // An unreadable file is reported by the next load, not here.
    const revision = await this.readRevision().catch(() => undefined);
    if (revision === undefined || revision === this.lastRevision || this.stopped) return;
    this.lastRevision = revision;
    notify(this.onChange, revision);
  }
}

interface LockFile {
  owner?: LockOwner;
  ino: number;
  mtimeMs: number;
}

async function readLock(path: string): Promise<LockFile | undefined> {
  try {
    const [info, text] = await Promise.all([stat(path), readFile(path, 'utf8')]);
    let owner: LockOwner | undefined;
    try {
      const parsed = JSON.parse(text) as Partial<LockOwner>;
      if (Number.isSafeInteger(parsed.pid) && typeof parsed.token === 'string') owner = parsed as LockOwner;
    } catch {
      owner = undefined;
    }
    return { owner, ino: info.ino, mtimeMs: info.mtimeMs };
  } catch (error) {
    if (isCode(error, 'ENOENT')) return undefined;
    throw error;
  }
}

function parseDocument(text: string, path: string): KeyStoreDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    // The parser's message can quote file content: keep it out of the error.
    throw new KeyStoreCorruptError(path, text.length === 0 ? 'the file is empty' : 'not valid JSON, possibly truncated');
  }
  const document = value as Partial<KeyStoreDocument> | null;
  if (typeof document !== 'object' || document === null || document.format !== FORMAT) {
    throw new KeyStoreCorruptError(path, 'not a nestjs-encryption key store file');
  }
  if (document.version !== 1) throw new KeyStoreCorruptError(path, `unsupported file version ${String(document.version)}`);
  if (document.ring !== undefined) parseStoredKeyRing(document.ring, path);
  if (!isRecord(document.usage) || !Object.values(document.usage).every(isUsage)) {
    throw new KeyStoreCorruptError(path, 'invalid usage totals');
  }
  if (!isRecord(document.instances) || !Object.values(document.instances).every(isInstance)) {
    throw new KeyStoreCorruptError(path, 'invalid instance heartbeats');
  }
  return document as KeyStoreDocument;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isUsage(value: unknown): boolean {
  return (
    isRecord(value) &&
    Number.isFinite(value.encryptions) &&
    Number.isFinite(value.decryptions) &&
    Number.isFinite(value.lastUsedAt)
  );
}

function isInstance(value: unknown): boolean {
  return (
    isRecord(value) &&
    Number.isFinite(value.expiresAt) &&
    isRecord(value.beat) &&
    typeof value.beat.instanceId === 'string' &&
    Number.isSafeInteger(value.beat.revision) &&
    typeof value.beat.at === 'string'
  );
}

async function fileIdentity(path: string): Promise<string> {
  const info = await stat(path).catch(() => undefined);
  return info ? `${info.ino}:${info.mtimeMs}:${info.size}` : 'missing';
}

/** Makes the rename durable. Windows can't open a directory for fsync; there the rename is all we have. */
async function syncDirectory(directory: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(directory, 'r');
    await handle.sync();
  } catch (error) {
    if (process.platform !== 'win32') throw error;
  } finally {
    await handle?.close();
  }
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return !isCode(error, 'ESRCH');
  }
}

function isCode(error: unknown, code: string): boolean {
  return (error as NodeJS.ErrnoException | undefined)?.code === code;
}

function positive(value: number | undefined, fallback: number, name: string): number {
  if (value === undefined) return fallback;
  if (!Number.isFinite(value) || value <= 0) {
    throw new EncryptionConfigError(MESSAGES.INVALID_KEY_STORE_OPTION(`${name} must be a positive number`));
  }
  return value;
}
