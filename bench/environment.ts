import { readFileSync } from 'node:fs';
import * as os from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

/** The repository root: this file runs from dist/bench/ (compiled) or bench/ (type-checked only). */
export const REPO_ROOT = findRepoRoot(dirname(fileURLToPath(import.meta.url)));

export interface Environment {
  date: string;
  cpu: string;
  cores: number;
  memoryGiB: number;
  platform: string;
  node: string;
  openssl: string;
  v8: string;
  packages: Record<string, string>;
  /** 1-minute load average when the run started: above `cores`, other processes competed for the CPU. */
  loadAverage: number;
}

const PACKAGES = ['nestjs-encryption', '@nestjs/core', '@nestjs/common', 'reflect-metadata', 'rxjs'];

export function describeEnvironment(): Environment {
  const cpus = os.cpus();
  return {
    date: new Date().toISOString(),
    cpu: cpus[0]?.model.trim() ?? 'unknown',
    cores: cpus.length,
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    platform: `${os.type()} ${os.release()} ${os.arch()}`,
    node: process.version,
    openssl: process.versions.openssl,
    v8: process.versions.v8,
    packages: Object.fromEntries(PACKAGES.map((name) => [name, packageVersion(name)])),
    loadAverage: os.loadavg()[0],
  };
}

function packageVersion(name: string): string {
  try {
    const manifest = JSON.parse(readFileSync(join(REPO_ROOT, 'node_modules', name, 'package.json'), 'utf8')) as {
      version: string;
    };
    return manifest.version;
  } catch {
    return 'not installed';
  }
}

function findRepoRoot(start: string): string {
  for (let dir = start; ; dir = dirname(dir)) {
    try {
      const manifest = JSON.parse(readFileSync(join(dir, 'package.json'), 'utf8')) as { workspaces?: unknown };
      if (manifest.workspaces) return dir;
    } catch {
      // no package.json here: keep walking up
    }
    if (dirname(dir) === dir) throw new Error(`No workspace root above ${start}`);
  }
}
