import { pbkdf2Sync, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { Redis } from 'ioredis';
import { FileKeyStore, KeyRetiredError } from 'nestjs-encryption';
import { PostgresKeyStore } from 'nestjs-encryption/postgres';
import { RedisKeyStore } from 'nestjs-encryption/redis';
import pg from 'pg';

import type { CliBuild } from './support/cli-build.js';
import { buildCli } from './support/cli-build.js';
import type { CliRun } from './support/cli-process.js';
import { jsonError, runCli } from './support/cli-process.js';
import type { EncryptionTestApp } from './support/encryption-test-app.js';
import { createEncryptionTestApp } from './support/encryption-test-app.js';
import { deleteKeysByPrefix, POSTGRES_URL, REDIS_URL } from './support/key-store-services.js';

/** Every command the CLI must offer, each with its own --help. */
const COMMANDS = [
  'keys list',
  'keys rotate',
  'keys retire',
  'keys restore',
  'keys destroy',
  'keys export-public',
  'master rewrap',
  'derive',
  'reencrypt',
];
const SLOW = 180_000;

let build: CliBuild;
let root: string;

beforeAll(() => {
  build = buildCli();
  root = mkdtempSync(join(tmpdir(), 'nestjs-encryption-cli-'));
});

afterAll(() => {
  build?.remove();
  if (root) rmSync(root, { recursive: true, force: true });
});

/** A key ring in a file store, created by an application (kept running, as in production). */
interface FileRing {
  dir: string;
  ringPath: string;
  masterKey: string;
  app: EncryptionTestApp;
  env: NodeJS.ProcessEnv;
  cli(args: string[], options?: { env?: NodeJS.ProcessEnv; input?: string }): Promise<CliRun>;
}

async function fileRing(name: string): Promise<FileRing> {
  const dir = join(root, name);
  const ringPath = join(dir, 'keyring.json');
  const masterKey = randomBytes(32).toString('base64');
  const app = await createEncryptionTestApp({ masterKey, keyStore: new FileKeyStore(ringPath) });
  const env = {
    KEY_STORE: 'file',
    KEY_STORE_PATH: ringPath,
    MASTER_KEY: masterKey,
    NESTJS_ENCRYPTION_STATE_DIR: join(dir, 'state'),
  };
  return {
    dir,
    ringPath,
    masterKey,
    app,
    env,
    cli: (args, options = {}) =>
      runCli(build.main, args, { cwd: dir, env: { ...env, ...options.env }, input: options.input }),
  };
}

function json<T = Record<string, unknown>>(run: CliRun): T {
  try {
    return JSON.parse(run.stdout) as T;
  } catch {
    throw new Error(`stdout is not JSON (exit ${run.code}):\n${run.stdout}\nstderr:\n${run.stderr}`);
  }
}

interface KeyOut {
  id: string;
  version: number;
  state: string;
  createdAt: string;
  ageMs: number;
  encryptions: number;
  decryptions: number;
  lastUsedAt: string | null;
  data?: {
    status: string;
    values: number;
    summary: string;
    sources: { source: string; values: number; covered: boolean }[];
  };
}

describe('CLI help and usage', () => {
  it(
    'has --help for every command: usage, options, exit codes (exit 0)',
    async () => {
      const runs = await Promise.all(COMMANDS.map((name) => runCli(build.main, [...name.split(' '), '--help'])));
      runs.forEach((run, i) => {
        expect(run.code).toBe(0);
        expect(run.stdout).toMatch(new RegExp(`^Usage: nestjs-encryption ${COMMANDS[i]}( <id>)? \\[options\\]\n`));
        expect(run.stdout).toContain('--json');
        expect(run.stdout).toContain('Exit codes:\n  0  success\n  1  usage error');
        expect(run.stdout).toContain('5  not found');
      });
      const help = Object.fromEntries(COMMANDS.map((name, i) => [name, runs[i].stdout]));
      for (const option of [
        '--input',
        '--fields',
        '--output',
        '--table',
        '--columns',
        '--key-column',
        '--connection',
        '--context-template',
        '--batch-size',
        '--dry-run',
        '--restart',
        '--progress-interval',
      ]) {
        expect(help.reencrypt).toContain(option);
      }
      expect(help['keys destroy']).toContain('--force');
      expect(help.derive).toContain('--salt');
      expect(help['master rewrap']).toContain('NEW_MASTER_KEY');
      expect(help['keys list']).toContain('MASTER_KEY_PASSPHRASE');
    },
    SLOW,
  );

  it(
    'lists every command in the main help; `help <command>` is the command help; --version is the library version',
    async () => {
      const [main, viaHelp, direct, group, version] = await Promise.all([
        runCli(build.main, ['--help']),
        runCli(build.main, ['help', 'keys', 'destroy']),
        runCli(build.main, ['keys', 'destroy', '-h']),
        runCli(build.main, ['keys', '--help']),
        runCli(build.main, ['--version']),
      ]);
      expect(main.code).toBe(0);
      for (const name of COMMANDS) expect(main.stdout).toContain(`  ${name} `);
      expect(main.stdout).toContain('KEY_STORE_PATH');
      expect(viaHelp).toMatchObject({ code: 0, stdout: direct.stdout });
      expect(group.code).toBe(0);
      expect(group.stdout).toContain('keys rotate');
      expect(group.stdout).not.toContain('master rewrap');
      const { version: libraryVersion } = JSON.parse(readFileSync('libs/encryption/package.json', 'utf8')) as {
        version: string;
      };
      expect(version).toMatchObject({ code: 0, stdout: `${libraryVersion}\n` });
    },
    SLOW,
  );

  it(
    'exits 1 with a message for usage errors, as JSON with --json',
    async () => {
      const runs = await Promise.all([
        runCli(build.main, []),
        runCli(build.main, ['frobnicate']),
        runCli(build.main, ['keys']),
        runCli(build.main, ['keys', 'list', '--bogus']),
        runCli(build.main, ['keys', 'retire']),
        runCli(build.main, ['keys', 'list', 'extra']),
        runCli(build.main, ['reencrypt', '--table', 't', '--input', 'f.jsonl', '--json']),
        runCli(build.main, ['reencrypt', '--input', 'f.jsonl']),
        runCli(build.main, ['reencrypt', '--input', 'f.jsonl', '--fields', 'a', '--batch-size', '0']),
      ]);
      for (const run of runs) expect(run.code).toBe(1);
      expect(runs[0].stderr).toContain('Usage: nestjs-encryption <command>');
      expect(runs[1].stderr).toContain('error: Unknown command: frobnicate');
      expect(runs[2].stderr).toContain('Usage: nestjs-encryption keys <command>');
      expect(runs[3].stderr).toContain(
        "error: Unknown option --bogus for keys list\nRun 'nestjs-encryption keys list --help' for usage.",
      );
      expect(runs[4].stderr).toContain('error: keys retire needs <id>');
      expect(runs[5].stderr).toContain('keys list takes no arguments');
      expect(runs[6].stdout).toBe('');
      expect(jsonError(runs[6])).toEqual({
        code: 'USAGE',
        message: 'Give either --input (JSON Lines) or --table (PostgreSQL)',
        exitCode: 1,
      });
      expect(runs[7].stderr).toContain('--input needs --fields');
      expect(runs[8].stderr).toContain('--batch-size must be a positive whole number');
    },
    SLOW,
  );
});

describe('CLI keys on a file key store', () => {
  let ring: FileRing;
  beforeAll(async () => {
    ring = await fileRing('keys');
  });
  afterAll(() => ring?.app.close());

  it(
    'keys list --json: ids, states, ages, usage counts and data usage, never key bytes',
    async () => {
      await ring.app.encryption.encryptToString('counted');
      await ring.app.keys.tick(); // flush usage counts to the store, as the application does every heartbeat
      const run = await ring.cli(['keys', 'list', '--json']);
      expect(run.code).toBe(0);
      const out = json<{
        store: string;
        revision: number;
        activeKeyId: string;
        keys: KeyOut[];
        keyPairs: unknown[];
        scans: unknown[];
      }>(run);
      const active = ring.app.keys.activeKey;
      expect(Object.keys(out).sort()).toEqual(['activeKeyId', 'keyPairs', 'keys', 'revision', 'scans', 'store']);
      expect(out).toMatchObject({
        store: `file ${ring.ringPath}`,
        revision: ring.app.keys.revision,
        activeKeyId: active.id,
        scans: [],
      });
      expect(out.keys).toHaveLength(1);
      const [key] = out.keys;
      expect(Object.keys(key).sort()).toEqual([
        'ageMs',
        'createdAt',
        'data',
        'decryptions',
        'encryptions',
        'id',
        'lastUsedAt',
        'state',
        'version',
      ]);
      expect(key).toMatchObject({ id: active.id, version: 1, state: 'active', encryptions: 1, decryptions: 0 });
      expect(key.ageMs).toBeGreaterThanOrEqual(0);
      expect(Date.parse(key.createdAt)).toBe(active.createdAt.getTime());
      expect(key.data).toEqual({ status: 'in-use', values: 0, sources: [], summary: 'active key' });
      const stored = JSON.parse(readFileSync(ring.ringPath, 'utf8')) as { ring: { keys: { wrappedKey: string }[] } };
      for (const { wrappedKey } of stored.ring.keys) expect(run.stdout).not.toContain(wrappedKey);
    },
    SLOW,
  );

  it(
    'keys list prints a table (no colours when not a terminal)',
    async () => {
      const run = await ring.cli(['keys', 'list']);
      expect(run.code).toBe(0);
      expect(run.stdout).toContain(`Key ring in file ${ring.ringPath}, revision`);
      expect(run.stdout).toMatch(/ID\s+VERSION\s+STATE\s+AGE\s+ENCRYPTIONS\s+DECRYPTIONS\s+LAST USED\s+DATA/);
      expect(run.stdout).toMatch(new RegExp(`${ring.app.keys.activeKey.id}\\s+1\\s+active`));
      expect(run.stdout).not.toContain('\x1b[');
    },
    SLOW,
  );

  it(
    'keys rotate, retire, restore: the running application follows each change',
    async () => {
      const before = ring.app.keys.activeKey.id;
      const old = await ring.app.encryption.encryptToString('made before rotation');
      const rotated = await ring.cli(['keys', 'rotate', '--json']);
      expect(rotated.code).toBe(0);
      const { active, previousActiveId } = json<{ active: KeyOut; previousActiveId: string }>(rotated);
      expect(previousActiveId).toBe(before);
      expect(active).toMatchObject({ version: 2, state: 'active' });
      await ring.app.keys.reload();
      expect(ring.app.keys.activeKey.id).toBe(active.id);

      const retired = await ring.cli(['keys', 'retire', before, '--json']);
      expect(retired.code).toBe(0);
      expect(json<{ key: KeyOut }>(retired).key).toMatchObject({ id: before, state: 'retired' });
      await ring.app.keys.reload();
      await expect(ring.app.encryption.decrypt(old)).rejects.toBeInstanceOf(KeyRetiredError);

      const restored = await ring.cli(['keys', 'restore', before]);
      expect(restored.code).toBe(0);
      expect(restored.stdout).toContain(`Restored ${before} (version 1, decrypt-only`);
      await ring.app.keys.reload();
      await expect(ring.app.encryption.decrypt(old)).resolves.toBe('made before rotation');
    },
    SLOW,
  );

  it(
    'exits 2 for a lifecycle change the key state forbids, 5 for an unknown key id',
    async () => {
      const active = ring.app.keys.activeKey.id;
      const [retireActive, destroyActive, ...unknown] = await Promise.all([
        ring.cli(['keys', 'retire', active, '--json']),
        ring.cli(['keys', 'destroy', active, '--force']),
        ring.cli(['keys', 'retire', 'k9-0000000000000000', '--json']),
        ring.cli(['keys', 'restore', 'k9-0000000000000000']),
        ring.cli(['keys', 'destroy', 'k9-0000000000000000', '--force']),
      ]);
      expect(retireActive.code).toBe(2);
      expect(jsonError(retireActive)).toEqual({
        code: 'INVALID_KEY_STATE',
        message: `Key ${active} is active and can't be retired`,
        exitCode: 2,
      });
      expect(destroyActive.code).toBe(2);
      expect(destroyActive.stderr).toContain(`error: Key ${active} is active and can't be destroyed`);
      for (const run of unknown) expect(run.code).toBe(5);
      expect(jsonError(unknown[0])).toEqual({
        code: 'NOT_FOUND',
        message: `No key with id k9-0000000000000000 in the key ring (file ${ring.ringPath})`,
        exitCode: 5,
      });
      expect(unknown[2].stderr).toContain('No key with id k9-0000000000000000');
      expect(ring.app.keys.activeKey.id).toBe(active);
    },
    SLOW,
  );

  it(
    'keys destroy refuses (exit 2) while no scan shows the key unused',
    async () => {
      const previous = ring.app.keys.listKeys().find((key) => key.state === 'decrypt-only')!;
      const run = await ring.cli(['keys', 'destroy', previous.id, '--json']);
      expect(run.code).toBe(2);
      expect(jsonError(run)).toMatchObject({ code: 'KEY_STILL_NEEDED', exitCode: 2 });
      expect(jsonError(run).message).toContain(`Refusing to destroy ${previous.id}: no source scanned yet`);
      await ring.app.keys.reload();
      expect(ring.app.keys.findKey(previous.id)?.state).toBe('decrypt-only');
    },
    SLOW,
  );

  it(
    "keys export-public prints the JWKS of the ring's key pairs, public members only",
    async () => {
      const run = await ring.cli(['keys', 'export-public']);
      expect(run.code).toBe(0);
      const jwks = json<{ keys: Record<string, unknown>[] }>(run);
      expect(jwks.keys.length).toBeGreaterThanOrEqual(1);
      for (const jwk of jwks.keys) {
        expect(jwk).toMatchObject({ kty: expect.any(String), kid: expect.any(String) });
        for (const member of ['d', 'p', 'q', 'dp', 'dq', 'qi']) expect(jwk).not.toHaveProperty(member);
      }
      await ring.app.keys.reload();
      expect(jwks).toEqual(ring.app.keys.publicJwks());
    },
    SLOW,
  );
});

describe('CLI configuration and store errors', () => {
  let ring: FileRing;
  beforeAll(async () => {
    ring = await fileRing('errors');
  });
  afterAll(() => ring?.app.close());

  it(
    'exits 3 for a wrong, malformed or missing master key and a bad KEY_STORE, writing nothing',
    async () => {
      const before = readFileSync(ring.ringPath, 'utf8').length;
      const [wrong, malformed, missing, badStore, noUrl] = await Promise.all([
        ring.cli(['keys', 'list', '--json'], { env: { MASTER_KEY: randomBytes(32).toString('base64') } }),
        ring.cli(['keys', 'rotate'], { env: { MASTER_KEY: 'c2hvcnQ=' } }),
        ring.cli(['keys', 'list'], { env: { MASTER_KEY: '' } }),
        ring.cli(['keys', 'list'], { env: { KEY_STORE: 'mongo' } }),
        ring.cli(['keys', 'list'], { env: { KEY_STORE: 'postgres' } }),
      ]);
      expect(wrong.code).toBe(3);
      expect(jsonError(wrong)).toEqual({
        code: 'INVALID_CONFIG',
        message:
          'The configured master key does not match the key store (wrong key or wrong store); nothing was written',
        exitCode: 3,
      });
      expect(malformed.code).toBe(3);
      expect(malformed.stderr).toContain('masterKey must be 32 bytes');
      expect(missing.code).toBe(3);
      expect(missing.stderr).toContain(
        'KEY_STORE=file needs MASTER_KEY (32 bytes, base64) or MASTER_KEY_PASSPHRASE; the CLI never makes one',
      );
      expect(badStore.code).toBe(3);
      expect(badStore.stderr).toContain('KEY_STORE must be one of file, memory, postgres, redis (got "mongo")');
      expect(noUrl.code).toBe(3);
      expect(noUrl.stderr).toContain('KEY_STORE=postgres needs DATABASE_URL');
      expect(readFileSync(ring.ringPath, 'utf8').length).toBe(before);
      expect(existsSync(join(ring.dir, '.data'))).toBe(false); // no development master key made
    },
    SLOW,
  );

  it(
    'exits 4 when the store is unreachable or holds no ring, without revealing a password or creating a ring',
    async () => {
      const [postgres, redis, empty] = await Promise.all([
        ring.cli(['keys', 'list', '--json'], {
          env: { KEY_STORE: 'postgres', DATABASE_URL: 'postgres://postgres:hunter2@127.0.0.1:1/test' },
        }),
        ring.cli(['keys', 'list'], { env: { KEY_STORE: 'redis', REDIS_URL: 'redis://:hunter2@127.0.0.1:1/0' } }),
        ring.cli(['keys', 'rotate'], { env: { KEY_STORE_PATH: join(ring.dir, 'elsewhere/keyring.json') } }),
      ]);
      expect(postgres.code).toBe(4);
      expect(jsonError(postgres)).toEqual({
        code: 'KEY_STORE_UNAVAILABLE',
        message: "The key store (PostgreSQL postgres://postgres@127.0.0.1:1/test) can't be reached (ECONNREFUSED)",
        exitCode: 4,
      });
      expect(redis.code).toBe(4);
      expect(redis.stderr).toContain("error: The key store (Redis redis://127.0.0.1:1/0) can't be reached");
      for (const run of [postgres, redis]) expect(run.stderr + run.stdout).not.toContain('hunter2');
      expect(empty.code).toBe(4);
      expect(empty.stderr).toContain(
        `The key store (file ${join(ring.dir, 'elsewhere/keyring.json')}) holds no key ring`,
      );
      expect(existsSync(join(ring.dir, 'elsewhere/keyring.json'))).toBe(false);
    },
    SLOW,
  );
});

describe('CLI reencrypt of a JSON Lines file, scans, and keys destroy', () => {
  let ring: FileRing;
  let k1: string;
  let k2: string;
  let file: string;
  let original: string;
  const explicitKey = randomBytes(32);

  beforeAll(async () => {
    ring = await fileRing('jsonl');
    const { encryption, keys } = ring.app;
    k1 = keys.activeKey.id;
    const a = await encryption.encryptToString('ada@example.com');
    const b = await encryption.encryptToString({ phone: '+44 20 7946 0958' });
    const c = await encryption.encryptToString('grace@example.com');
    k2 = (await keys.rotate()).id;
    const current = await encryption.encryptToString('already current');
    const foreign = await encryption.encryptToString('explicit key', { key: explicitKey });
    file = join(ring.dir, 'customers.jsonl');
    original =
      `{"id":1,"email":"${a}","profile":{"phone":"${b}"}}\n` +
      `{"id":2,"email":"${current}"}\n` +
      `{"id":3,"email":"not-a-ciphertext"}\n` +
      `{"id":4,"email":"${foreign}"}\n` +
      'this line is not JSON\n' +
      '\n' +
      `{ "id" : 5, "big": 12345678901234567890, "email": "${c}", "name": "\\u00e9l\\u00e8ve" }\r\n` +
      `{"id":6,"profile":null}`; // no final newline
    writeFileSync(file, original, { mode: 0o640 });
  }, SLOW);
  afterAll(() => ring?.app.close());

  it(
    '--dry-run counts what would change, writes nothing, and records a scan (exit 2: some values fail)',
    async () => {
      const run = await ring.cli([
        'reencrypt',
        '--input',
        file,
        '--fields',
        'email,profile.phone',
        '--dry-run',
        '--json',
      ]);
      expect(run.code).toBe(2);
      const out = json(run);
      expect(out).toMatchObject({
        kind: 'jsonl',
        dryRun: true,
        resumed: false,
        interrupted: false,
        activeKeyId: k2,
        lines: 8,
        values: 7,
        rewritten: 0,
        wouldRewrite: 3,
        alreadyCurrent: 1,
        changedMeanwhile: 0,
        failed: 3,
        failuresByCode: { NOT_A_CIPHERTEXT: 1, KEY_NOT_FOUND: 1, NOT_JSON: 1 },
        keys: { [k1]: 3, [k2]: 1 },
      });
      expect(readFileSync(file, 'utf8')).toBe(original);

      const list = json<{ keys: KeyOut[] }>(await ring.cli(['keys', 'list', '--json']));
      const first = list.keys.find((key) => key.id === k1)!;
      expect(first.data).toMatchObject({ status: 'in-use', values: 3 });
      const refused = await ring.cli(['keys', 'destroy', k1]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`Refusing to destroy ${k1}: 3 values in ${file} (email, profile.phone)`);
    },
    SLOW,
  );

  it(
    'rewrites what it can, reports and keeps what it cannot, and swaps the file atomically',
    async () => {
      const run = await ring.cli(['reencrypt', '--input', file, '--fields', 'email,profile.phone', '--json']);
      expect(run.code).toBe(2);
      const out = json<{
        failures: { location: string; code: string; reason: string }[];
        keys: Record<string, number>;
        unusedKeyIds: string[];
      }>(run);
      expect(out).toMatchObject({
        dryRun: false,
        lines: 8,
        values: 7,
        rewritten: 3,
        alreadyCurrent: 1,
        failed: 3,
        output: file,
      });
      expect(out.failures).toEqual([
        { location: 'line 3 field email', code: 'NOT_A_CIPHERTEXT', reason: 'not a nestjs-encryption ciphertext' },
        {
          location: 'line 4 field email',
          code: 'KEY_NOT_FOUND',
          reason: 'No key with the ciphertext key id is available for decryption',
          keyId: expect.stringMatching(/^x/),
        },
        { location: 'line 5', code: 'NOT_JSON', reason: 'the line is not a JSON object' },
      ]);
      expect(out.keys[k2]).toBe(4);
      expect(out.keys[k1]).toBeUndefined();
      expect(out.unusedKeyIds).toEqual([k1]);

      const before = original.split('\n');
      const after = readFileSync(file, 'utf8').split('\n');
      expect(after).toHaveLength(before.length);
      for (const i of [1, 2, 3, 4, 5, 7]) expect(after[i]).toBe(before[i]); // nothing to rewrite: byte for byte
      const line1 = JSON.parse(after[0]) as { email: string; profile: { phone: string } };
      await expect(ring.app.encryption.decrypt(line1.email)).resolves.toBe('ada@example.com');
      await expect(ring.app.encryption.decrypt(line1.profile.phone)).resolves.toEqual({ phone: '+44 20 7946 0958' });
      // Only the ciphertext changed: spacing, the big number, the escapes and the CRLF are as they were.
      const email5 = /"email": "([A-Za-z0-9_-]+)"/.exec(after[6])![1];
      expect(after[6]).toBe(before[6].replace(/"email": "[A-Za-z0-9_-]+"/, `"email": "${email5}"`));
      expect(after[6].endsWith('\r')).toBe(true);
      await expect(ring.app.encryption.decrypt(email5)).resolves.toBe('grace@example.com');
      expect(statSync(file).mode & 0o777).toBe(0o640);
      expect(readdirSync(ring.dir).filter((name) => name.includes('.tmp'))).toEqual([]);
      expect(readdirSync(join(ring.dir, 'state/checkpoints')).filter((name) => name.endsWith('.json'))).toEqual([]);
    },
    SLOW,
  );

  it(
    'keys list then shows the old key unused by every scanned source, and keys destroy accepts it',
    async () => {
      const run = await ring.cli(['keys', 'list', '--json']);
      const out = json<{ keys: KeyOut[]; scans: { source: string; dryRun: boolean; values: number }[] }>(run);
      expect(out.scans).toEqual([
        expect.objectContaining({ source: `${file} (email, profile.phone)`, dryRun: false, values: 7 }),
      ]);
      expect(out.keys.find((key) => key.id === k1)!.data).toMatchObject({
        status: 'unused',
        values: 0,
        summary: 'no values in 1 scanned source',
        sources: [expect.objectContaining({ covered: true, values: 0 })],
      });
      const human = await ring.cli(['keys', 'list']);
      expect(human.stdout).toContain(`No scanned source uses: ${k1}`);

      const destroyed = await ring.cli(['keys', 'destroy', k1, '--json']);
      expect(destroyed.code).toBe(0);
      expect(json<{ key: KeyOut; forced: boolean }>(destroyed)).toMatchObject({
        key: { id: k1, state: 'destroyed' },
        forced: false,
      });
      const stored = JSON.parse(readFileSync(ring.ringPath, 'utf8')) as {
        ring: { keys: { id: string; wrappedKey?: string }[] };
      };
      expect(stored.ring.keys.find((key) => key.id === k1)!.wrappedKey).toBeUndefined();
    },
    SLOW,
  );

  it(
    'keys destroy --force destroys a key scanned data still uses',
    async () => {
      await ring.app.keys.reload();
      await ring.app.keys.rotate();
      const refused = await ring.cli(['keys', 'destroy', k2]);
      expect(refused.code).toBe(2);
      expect(refused.stderr).toContain(`Refusing to destroy ${k2}: 4 values in ${file}`);
      const forced = await ring.cli(['keys', 'destroy', k2, '--force', '--json']);
      expect(forced.code).toBe(0);
      expect(json(forced)).toMatchObject({ key: { id: k2, state: 'destroyed' }, forced: true });
    },
    SLOW,
  );

  it(
    "rebuilds each value's context from --context-template, and reports values whose context is missing",
    async () => {
      const { encryption } = ring.app;
      const bound = (id: string) =>
        encryption.encryptToString(`secret of ${id}`, { context: { record: id, field: 'secret' } });
      const path = join(ring.dir, 'bound.jsonl');
      const lines = [
        `{"id":"a1","secret":"${await bound('a1')}"}`,
        `{"id":7,"secret":"${await bound('7')}"}`,
        `{"secret":"${await bound('x')}"}`,
      ];
      await ring.app.keys.rotate();
      writeFileSync(path, lines.join('\n') + '\n');
      const output = join(ring.dir, 'bound.out.jsonl');
      const run = await ring.cli([
        'reencrypt',
        '--input',
        path,
        '--output',
        output,
        '--fields',
        'secret',
        '--context-template',
        '{"record":"{id}","field":"{field}"}',
        '--json',
      ]);
      expect(run.code).toBe(2);
      expect(json(run)).toMatchObject({
        rewritten: 2,
        failed: 1,
        failures: [expect.objectContaining({ location: 'line 3 field secret', code: 'CONTEXT_MISSING' })],
      });
      expect(readFileSync(path, 'utf8')).toBe(lines.join('\n') + '\n'); // --output leaves the input alone
      const rewritten = readFileSync(output, 'utf8')
        .trim()
        .split('\n')
        .map((line) => JSON.parse(line) as { id?: string | number; secret: string });
      await expect(
        encryption.decrypt(rewritten[0].secret, { context: { record: 'a1', field: 'secret' } }),
      ).resolves.toBe('secret of a1');
      await expect(
        encryption.decrypt(rewritten[1].secret, { context: { record: '7', field: 'secret' } }),
      ).resolves.toBe('secret of 7');
      expect(rewritten[0].secret).not.toBe(JSON.parse(lines[0]).secret);
      expect(rewritten[2].secret).toBe(JSON.parse(lines[2]).secret);
    },
    SLOW,
  );

  it(
    'exits 5 for a missing input file, table or column, 4 for an unreachable database',
    async () => {
      const [file, table, column, database] = await Promise.all([
        ring.cli(['reencrypt', '--input', join(ring.dir, 'missing.jsonl'), '--fields', 'a']),
        ring.cli(['reencrypt', '--table', 'no_such_table_here', '--columns', 'a', '--connection', POSTGRES_URL]),
        ring.cli([
          'reencrypt',
          '--table',
          'pg_catalog.pg_class',
          '--columns',
          'no_such_column',
          '--key-column',
          'oid',
          '--connection',
          POSTGRES_URL,
        ]),
        ring.cli(['reencrypt', '--table', 't', '--columns', 'a', '--json'], {
          env: { DATABASE_URL: 'postgres://app:hunter2@127.0.0.1:1/app' },
        }),
      ]);
      expect(file.code).toBe(5);
      expect(file.stderr).toContain(`No input file ${join(ring.dir, 'missing.jsonl')}`);
      expect(table.code).toBe(5);
      expect(table.stderr).toContain('No table no_such_table_here');
      expect(column.code).toBe(5);
      expect(column.stderr).toContain('Table pg_catalog.pg_class has no column no_such_column');
      expect(database.code).toBe(4);
      expect(jsonError(database)).toEqual({
        code: 'DATA_SOURCE_UNAVAILABLE',
        message: "Can't connect to postgres://app@127.0.0.1:1/app (ECONNREFUSED)",
        exitCode: 4,
      });
    },
    SLOW,
  );
});

describe('CLI master rewrap', () => {
  let ring: FileRing;
  let ciphertext: string;
  beforeAll(async () => {
    ring = await fileRing('rewrap');
    ciphertext = await ring.app.encryption.encryptToString('survives every rewrap');
    await ring.app.close(); // it holds the old master key: after a rewrap it must be restarted
  });

  it(
    're-wraps under NEW_MASTER_KEY, then NEW_MASTER_KEY_PASSPHRASE; each old master key stops working',
    async () => {
      const next = randomBytes(32).toString('base64');
      const run = await ring.cli(['master', 'rewrap', '--json'], { env: { NEW_MASTER_KEY: next } });
      expect(run.code).toBe(0);
      // The ring's data key and its RSA key pair (enableAsymmetric is on by default).
      expect(json(run)).toMatchObject({ rewrapped: 1, keyPairs: 1, masterKey: 'key', revision: expect.any(Number) });
      expect((await ring.cli(['keys', 'list'])).code).toBe(3);
      expect((await ring.cli(['keys', 'list'], { env: { MASTER_KEY: next } })).code).toBe(0);

      const byPassphrase = await ring.cli(['master', 'rewrap'], {
        env: { MASTER_KEY: next, NEW_MASTER_KEY_PASSPHRASE: 'correct horse battery staple' },
      });
      expect(byPassphrase.code).toBe(0);
      expect(byPassphrase.stdout).toContain('Re-wrapped 1 key and 1 key pair in ');
      expect(byPassphrase.stdout).toContain('Restart every instance with the new master key');
      expect((await ring.cli(['keys', 'list'], { env: { MASTER_KEY: next } })).code).toBe(3);
      const app = await createEncryptionTestApp({
        masterKeyPassphrase: 'correct horse battery staple',
        keyStore: new FileKeyStore(ring.ringPath),
      });
      try {
        await expect(app.encryption.decrypt(ciphertext)).resolves.toBe('survives every rewrap');
      } finally {
        await app.close();
      }
    },
    SLOW,
  );

  it(
    'takes the new key from a file, never from the command line; exits 1 without exactly one new key',
    async () => {
      const keyFile = join(ring.dir, 'next.key');
      const next = randomBytes(32).toString('base64');
      writeFileSync(keyFile, `${next}\n`, { mode: 0o600 });
      const env = { MASTER_KEY: '', MASTER_KEY_PASSPHRASE: 'correct horse battery staple' };
      const [none, both, invalid, missingFile] = await Promise.all([
        ring.cli(['master', 'rewrap'], { env }),
        ring.cli(['master', 'rewrap', '--new-master-key-file', keyFile], { env: { ...env, NEW_MASTER_KEY: next } }),
        ring.cli(['master', 'rewrap', '--json'], { env: { ...env, NEW_MASTER_KEY: 'dG9vIHNob3J0' } }),
        ring.cli(['master', 'rewrap', '--new-master-key-file', join(ring.dir, 'nope.key')], { env }),
      ]);
      expect(none.code).toBe(1);
      expect(none.stderr).toContain(
        'exactly one of NEW_MASTER_KEY, NEW_MASTER_KEY_PASSPHRASE or --new-master-key-file',
      );
      expect(both.code).toBe(1);
      expect(invalid.code).toBe(1);
      expect(jsonError(invalid)).toMatchObject({
        code: 'INVALID_INPUT',
        message: 'A master key must be 32 bytes, as a Buffer or base64 text',
      });
      expect(missingFile.code).toBe(5);
      const fromFile = await ring.cli(['master', 'rewrap', '--new-master-key-file', keyFile], { env });
      expect(fromFile.code).toBe(0);
      expect((await ring.cli(['keys', 'list'], { env: { MASTER_KEY: next } })).code).toBe(0);
    },
    SLOW,
  );
});

describe('CLI derive', () => {
  it(
    'derives PBKDF2-HMAC-SHA256 from stdin or an environment variable, prints key and salt, and reproduces it with --salt',
    async () => {
      const passphrase = 'correct horse battery staple';
      const [fromStdin, fromEnv] = await Promise.all([
        runCli(build.main, ['derive', '--iterations', '100000', '--json'], { input: `${passphrase}\n` }),
        runCli(
          build.main,
          ['derive', '--iterations', '100000', '--key-size', '64', '--passphrase-env', 'SECRET', '--json'],
          { env: { SECRET: passphrase } },
        ),
      ]);
      for (const run of [fromStdin, fromEnv]) expect(run.code).toBe(0);
      const a = json<{ key: string; salt: string; iterations: number; keySize: number; algorithm: string }>(fromStdin);
      expect(a).toMatchObject({ algorithm: 'PBKDF2-HMAC-SHA256', iterations: 100_000, keySize: 32 });
      expect(Buffer.from(a.salt, 'base64')).toHaveLength(16);
      expect(a.key).toBe(
        pbkdf2Sync(passphrase, Buffer.from(a.salt, 'base64'), 100_000, 32, 'sha256').toString('base64'),
      );
      const b = json<{ key: string; salt: string; keySize: number }>(fromEnv);
      expect(b.keySize).toBe(64);
      expect(b.key).toBe(
        pbkdf2Sync(passphrase, Buffer.from(b.salt, 'base64'), 100_000, 64, 'sha256').toString('base64'),
      );

      const again = await runCli(build.main, ['derive', '--iterations', '100000', '--salt', a.salt], {
        input: passphrase,
      });
      expect(again.code).toBe(0);
      expect(again.stdout).toContain(`key   ${a.key}\nsalt  ${a.salt}\n`);
    },
    SLOW,
  );

  it(
    'exits 1 for an empty passphrase, a bad salt or too few iterations',
    async () => {
      const runs = await Promise.all([
        runCli(build.main, ['derive'], { input: '' }),
        runCli(build.main, ['derive', '--salt', 'not base64!'], { input: 'x' }),
        runCli(build.main, ['derive', '--salt', 'c2hvcnQ='], { input: 'x' }),
        runCli(build.main, ['derive', '--iterations', '1000'], { input: 'x' }),
        runCli(build.main, ['derive', '--passphrase-env', 'UNSET_VARIABLE']),
      ]);
      for (const run of runs) expect(run.code).toBe(1);
      expect(runs[0].stderr).toContain('A password must be a non-empty string or Buffer');
      expect(runs[2].stderr).toContain('A salt must be at least 16 bytes');
      expect(runs[3].stderr).toContain('--iterations must be at least 100000');
      expect(runs[4].stderr).toContain('Environment variable UNSET_VARIABLE is not set');
    },
    SLOW,
  );
});

describe('CLI on the shared stores (same configuration as the application)', () => {
  it(
    'KEY_STORE=postgres: lists and rotates the ring an application made',
    async () => {
      const database = `cli_e2e_${process.pid}_${randomBytes(3).toString('hex')}`;
      const admin = new pg.Client({ connectionString: POSTGRES_URL });
      await admin.connect();
      await admin.query(`CREATE DATABASE ${database}`);
      const url = new URL(POSTGRES_URL);
      url.pathname = `/${database}`;
      const masterKey = randomBytes(32).toString('base64');
      const app = await createEncryptionTestApp({
        masterKey,
        keyStore: new PostgresKeyStore({ connectionString: url.href }),
      });
      try {
        const env = {
          KEY_STORE: 'postgres',
          DATABASE_URL: url.href,
          MASTER_KEY: masterKey,
          NESTJS_ENCRYPTION_STATE_DIR: join(root, 'pg-state'),
        };
        const list = await runCli(build.main, ['keys', 'list', '--json'], { env });
        expect(list.code).toBe(0);
        expect(json(list)).toMatchObject({ store: `PostgreSQL ${url.href}`, activeKeyId: app.keys.activeKey.id });
        const rotated = await runCli(build.main, ['keys', 'rotate', '--json'], { env });
        expect(rotated.code).toBe(0);
        await app.keys.reload();
        expect(app.keys.activeKey.id).toBe(json<{ active: KeyOut }>(rotated).active.id);
      } finally {
        await app.close();
        await admin.query(`DROP DATABASE ${database} WITH (FORCE)`);
        await admin.end();
      }
    },
    SLOW,
  );

  it(
    'KEY_STORE=redis: lists and rotates the ring an application made',
    async () => {
      const url = new URL(REDIS_URL);
      const prefix = `nestjs-encryption:`;
      url.pathname = '/13'; // a database of its own: the CLI uses the default key prefix, as the application does
      const redis = new Redis(url.href);
      await deleteKeysByPrefix(redis, prefix);
      const masterKey = randomBytes(32).toString('base64');
      const app = await createEncryptionTestApp({ masterKey, keyStore: new RedisKeyStore({ url: url.href }) });
      try {
        const env = {
          KEY_STORE: 'redis',
          REDIS_URL: url.href,
          MASTER_KEY: masterKey,
          NESTJS_ENCRYPTION_STATE_DIR: join(root, 'redis-state'),
        };
        const list = await runCli(build.main, ['keys', 'list', '--json'], { env });
        expect(list.code).toBe(0);
        expect(json(list)).toMatchObject({ store: `Redis ${url.href}`, activeKeyId: app.keys.activeKey.id });
        const rotated = await runCli(build.main, ['keys', 'rotate', '--json'], { env });
        expect(rotated.code).toBe(0);
        await app.keys.reload();
        expect(app.keys.activeKey.id).toBe(json<{ active: KeyOut }>(rotated).active.id);
      } finally {
        await app.close();
        await deleteKeysByPrefix(redis, prefix);
        redis.disconnect();
      }
    },
    SLOW,
  );
});
