import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { basename, dirname, join } from 'node:path';

import { CliError, EXIT } from '../cli.errors.js';

/**
 * Writes JSON so that a crash leaves the old or the new file, never a mix: a temporary file in the
 * same directory is written and fsynced, renamed over the target, then the directory is fsynced.
 */
export async function writeJsonAtomic(path: string, value: unknown): Promise<void> {
  const directory = dirname(path);
  await mkdir(directory, { recursive: true, mode: 0o700 });
  const temp = join(directory, `.${basename(path)}.${process.pid}.${randomBytes(4).toString('hex')}.tmp`);
  const file = await open(temp, 'wx', 0o600);
  try {
    await file.writeFile(JSON.stringify(value, null, 2) + '\n');
    await file.sync();
  } finally {
    await file.close();
  }
  try {
    await rename(temp, path);
  } catch (error) {
    await unlink(temp).catch(() => undefined);
    throw error;
  }
  await syncDirectory(directory);
}

export async function syncDirectory(directory: string): Promise<void> {
  const handle = await open(directory, 'r');
  try {
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** The parsed file, or `undefined` when it doesn't exist. */
export async function readJson<T>(path: string): Promise<T | undefined> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw error;
  }
  try {
    return JSON.parse(text) as T;
  } catch {
    throw new CliError(EXIT.FAILED, 'STATE_CORRUPT', `${path} is not valid JSON; move it away to start over`);
  }
}

interface LockOwner {
  pid: number;
  hostname: string;
  startedAt: string;
}

/**
 * An exclusive lock on one job (`<path>`), so two runs never write the same output or checkpoint. A
 * lock whose process on this host is gone (a crash, SIGKILL) is taken over, which is what lets an
 * interrupted job resume.
 */
export async function acquireJobLock(path: string): Promise<() => Promise<void>> {
  await mkdir(dirname(path), { recursive: true, mode: 0o700 });
  const owner: LockOwner = { pid: process.pid, hostname: hostname(), startedAt: new Date().toISOString() };
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      await writeFile(path, JSON.stringify(owner), { flag: 'wx', mode: 0o600 });
      return () => unlink(path).catch(() => undefined);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error;
    }
    const holder = await readJson<LockOwner>(path).catch(() => undefined);
    if (holder && holder.hostname === hostname() && !processAlive(holder.pid)) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    throw new CliError(
      EXIT.FAILED,
      'JOB_LOCKED',
      holder
        ? `Another run of this job holds ${path} (pid ${holder.pid} on ${holder.hostname}, since ${holder.startedAt}); ` +
            'wait for it, or remove the file if that process is gone'
        : `Another run of this job holds ${path}; remove the file if no run is in progress`,
    );
  }
  throw new CliError(EXIT.FAILED, 'JOB_LOCKED', `Could not take the lock ${path}`);
}

function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
