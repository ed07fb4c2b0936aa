import type { ChildProcess } from 'node:child_process';
import { fork } from 'node:child_process';
import { fileURLToPath } from 'node:url';

import type { INestApplication } from '@nestjs/common';
import { EncryptionService } from 'nestjs-encryption';
import { register } from 'prom-client';

import { loadDemoConfig } from '../apps/demo/src/config/demo.config.js';
import { createDemoApp } from '../apps/demo/src/create-demo-app.js';
import { CustomersRepository } from '../apps/demo/src/customers/customers.repository.js';
import { median } from './harness.js';
import type { CustomerFields } from './http-fixture.js';
import {
  BareCryptoCustomersRepository,
  createBareCryptoCustomersApp,
  createDemoCustomersApp,
  createPlainCustomersApp,
  PlainCustomersRepository,
} from './http-fixture.js';
import type { LoadRequest, LoadResult } from './http-load.js';
import type { Suite, SuiteResult } from './suite.js';
import { formatOps, formatRatio, target } from './suite.js';

/** From the performance issue: the encrypted endpoint keeps at least this share of the plain one's rate. */
const TARGET_RATIO = 0.85;
const SENSITIVE = ['email', 'phone', 'nationalId'] as const;
const CUSTOMER: CustomerFields = {
  name: 'Ada Lovelace',
  email: 'ada.lovelace@example.com',
  phone: '+44 20 7946 0958',
  nationalId: 'QQ 12 34 56 C',
};

interface Variant {
  name: string;
  /** What one request costs beyond the shared pipeline. */
  work: string;
  url: string;
  app: INestApplication;
  rounds: Measured[];
}

interface Measured extends LoadResult {
  /** CPU time of this (the server) process per request served: robust to other load on the machine. */
  cpuMicrosPerRequest: number;
}

interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  connections: number;
  rounds: number;
}

/**
 * The demo's `GET /customers/:id` (three `@Encrypted()` fields) under autocannon, against the same
 * endpoint without encryption, in one process and one run. autocannon runs in a child process
 * (http-load.ts) so it doesn't share the servers' event loop; the variants take turns.
 */
export const httpSuite: Suite = {
  id: 'http',
  title: "HTTP: the demo's GET /customers/:id with and without field encryption (autocannon)",
  async run({ log }) {
    const settings: Settings = {
      durationSeconds: numberFromEnv('BENCH_HTTP_DURATION_S', 10),
      warmupSeconds: numberFromEnv('BENCH_HTTP_WARMUP_S', 3),
      connections: numberFromEnv('BENCH_HTTP_CONNECTIONS', 20),
      rounds: numberFromEnv('BENCH_HTTP_ROUNDS', 3),
    };
    const load = await startLoadGenerator();
    const variants: Variant[] = [];
    try {
      variants.push(
        await demoVariant(),
        await demoPartsVariant(true),
        await demoPartsVariant(false),
        await bareCryptoVariant(),
        await plainVariant(),
      );
      for (const variant of variants) {
        log(`warm-up ${settings.warmupSeconds} s: ${variant.name}`);
        checked(variant, await measureRun(load, variant, settings.connections, settings.warmupSeconds));
      }
      for (let round = 0; round < settings.rounds; round++) {
        // Alternate the order (A B C D, D C B A, ...) so drift in machine load hits every variant alike.
        const order = round % 2 === 0 ? variants : [...variants].reverse();
        for (const variant of order) {
          log(`round ${round + 1}/${settings.rounds}, ${settings.durationSeconds} s: ${variant.name}`);
          const result = checked(
            variant,
            await measureRun(load, variant, settings.connections, settings.durationSeconds),
          );
          variant.rounds.push(result);
          log(
            `  ${formatOps(result.requestsPerSec)} req/s, p99 ${result.latencyP99Ms} ms, ${result.cpuMicrosPerRequest.toFixed(0)} µs CPU/request`,
          );
        }
      }
    } finally {
      await load.stop();
      for (const variant of variants) await variant.app.close();
      // The demo registered its metrics in prom-client's global registry.
      register.clear();
    }
    return report(variants, settings);
  },
};

function report(variants: Variant[], settings: Settings): SuiteResult {
  const [demo, withoutMetrics, repositoryOnly, bare, plain] = variants;
  const rateRatio = (variant: Variant) =>
    median(variant.rounds.map((result, round) => result.requestsPerSec / plain.rounds[round].requestsPerSec));
  const mean = (variant: Variant, pick: (result: Measured) => number) =>
    variant.rounds.reduce((sum, result) => sum + pick(result), 0) / variant.rounds.length;
  const cpu = (variant: Variant) => median(variant.rounds.map((result) => result.cpuMicrosPerRequest));
  const rows = variants.map((variant) => [
    variant.name,
    variant.work,
    formatOps(mean(variant, (result) => result.requestsPerSec)),
    mean(variant, (result) => result.latencyP50Ms).toFixed(1),
    mean(variant, (result) => result.latencyP99Ms).toFixed(1),
    variant.rounds.map((result) => formatOps(result.requestsPerSec)).join(' / '),
    formatRatio(rateRatio(variant)),
    cpu(variant).toFixed(0),
    formatRatio(cpu(plain) / cpu(variant)),
  ]);
  const cost = (variant: Variant, baseline: Variant) => (cpu(variant) - cpu(baseline)).toFixed(0);

  return {
    description: [
      'One Node.js process serves four Nest apps on Express, each on its own port on 127.0.0.1, with logging off. ' +
        "All four share the demo's request pipeline: global `ValidationPipe({ whitelist, forbidNonWhitelisted, " +
        'transform })`, global `ClassSerializerInterceptor`, `ParseUUIDPipe`, an async in-memory repository, and a class ' +
        'instance as the response. Each is asked for one customer with a name, an e-mail, a phone number and a ' +
        'national id.',
      '*demo* is the real demo app (`createDemoApp`, in-memory key store, with its health, Prometheus metrics and ' +
        "scheduling modules). The next two variants use the demo's own controller and repository " +
        '(bench/http-fixture.ts). *demo without metrics* keeps the `EncryptionInterceptor` but drops the health, ' +
        'metrics and scheduling modules. *demo repository only* also drops the interceptor, so the response goes out ' +
        'in plaintext. *no encryption* has the same controller shape, but it returns a class without `@Encrypted()` ' +
        'from a repository that stores plaintext. The ratio of *demo* to *no encryption* is the cost a user pays for ' +
        "the demo's protection. The variants in between show where that cost goes. *bare node:crypto* does the demo's " +
        'four AES-256-GCM operations by hand, with no library (bench/http-fixture.ts): it is the floor for this much ' +
        'encryption per request, whoever writes it.',
      `autocannon 9 runs in a separate Node.js process (bench/http-load.ts), so it never shares the servers' event loop. ` +
        `On a 2-core machine, the server and the load generator each get roughly one core. It uses ${settings.connections} ` +
        `keep-alive connections, no pipelining, and GETs the same URL. Each variant is warmed up for ` +
        `${settings.warmupSeconds} s and then measured for ${settings.durationSeconds} s in each of ${settings.rounds} ` +
        'rounds. The order alternates (A B C D, then D C B A). *req/s* is completed requests divided by the duration, ' +
        'averaged over the rounds, and *vs no encryption* is the median of the per-round ratios. The latencies are the ' +
        'means of the per-round p50 and p99. Every run is checked for zero errors and zero non-2xx answers, and every ' +
        "variant's response is checked before it is measured.",
      '*CPU µs/req* is the CPU time (user + system, all threads) of the server process during a run, divided by the ' +
        "requests served, as a median over the rounds. *rate by CPU* is the baseline's CPU per request divided by the " +
        "variant's. Other processes on the machine cut req/s sharply, but they change CPU time per request much less. " +
        'On a shared machine, the CPU figures are therefore the steadier measure of the overhead.',
    ],
    tables: [
      {
        headers: [
          'Variant',
          'Work per request',
          'req/s',
          'p50 ms',
          'p99 ms',
          'req/s by round',
          'vs no encryption',
          'CPU µs/req',
          'rate by CPU',
        ],
        rows,
      },
    ],
    targets: [
      target(
        'HTTP GET /customers/:id, demo (3 @Encrypted fields) / no encryption: req/s',
        rateRatio(demo),
        TARGET_RATIO,
      ),
      target(
        'HTTP GET /customers/:id, demo / no encryption: rate by server CPU per request',
        cpu(plain) / cpu(demo),
        TARGET_RATIO,
      ),
    ],
    notes: [
      `The same four AES-256-GCM operations written by hand with bare node:crypto keep ${formatRatio(rateRatio(bare))} ` +
        `of the unencrypted rate (${formatRatio(cpu(plain) / cpu(bare))} by CPU)` +
        (cpu(plain) / cpu(bare) < TARGET_RATIO
          ? `: below the ${TARGET_RATIO} target, so this much encryption per request can't meet it, whatever does it. `
          : '. ') +
        `Against that floor, the demo without ` +
        `metrics runs at ${formatRatio(cpu(bare) / cpu(withoutMetrics))} and the full demo at ` +
        `${formatRatio(cpu(bare) / cpu(demo))} of bare node:crypto's rate by CPU.`,
      `By CPU time, the demo spends ${cost(demo, plain)} µs more per request than the baseline. Decrypting the ` +
        `stored record (one envelope holding the three personal fields) in the repository accounts for ${cost(repositoryOnly, plain)} µs. Encrypting them again ` +
        `for the response (\`EncryptionInterceptor\`) accounts for ${cost(withoutMetrics, repositoryOnly)} µs. The ` +
        `metrics, health and scheduling modules account for ${cost(demo, withoutMetrics)} µs. With metrics on, each of ` +
        'the four operations is timed and recorded in Prometheus counters and histograms. The parts come from separate ' +
        'runs, so they add up only roughly.',
    ],
  };
}

async function listen(app: INestApplication): Promise<string> {
  await app.listen(0, '127.0.0.1');
  return app.getUrl();
}

async function demoVariant(): Promise<Variant> {
  const app = await createDemoApp(loadDemoConfig({ KEY_STORE: 'memory', DEMO_ADAPTER: 'express' }), false);
  const base = await listen(app);
  const { id } = await app.get(CustomersRepository).create(CUSTOMER);
  const url = `${base}/customers/${id}`;
  const body = await fetchJson(url);
  await expectCiphertexts('demo', body, app.get(EncryptionService));
  return {
    name: 'demo',
    work: '1 stored envelope (3 fields) decrypted, 3 fields encrypted for the response, 4 operations recorded in Prometheus metrics',
    url,
    app,
    rounds: [],
  };
}

async function demoPartsVariant(responses: boolean): Promise<Variant> {
  const app = await createDemoCustomersApp({ responses });
  const base = await listen(app);
  const { id } = await app.get(CustomersRepository).create(CUSTOMER);
  const url = `${base}/customers/${id}`;
  const body = await fetchJson(url);
  if (responses) {
    await expectCiphertexts('demo without metrics', body, app.get(EncryptionService));
    return {
      name: 'demo without metrics',
      work: '1 stored envelope (3 fields) decrypted, 3 fields encrypted for the response',
      url,
      app,
      rounds: [],
    };
  }
  expectPlaintext('demo repository only', body);
  return { name: 'demo repository only', work: '1 stored envelope (3 fields) decrypted', url, app, rounds: [] };
}

async function bareCryptoVariant(): Promise<Variant> {
  const app = await createBareCryptoCustomersApp();
  const base = await listen(app);
  const repository = app.get(BareCryptoCustomersRepository);
  const { id } = await repository.create(CUSTOMER);
  const url = `${base}/customers/${id}`;
  const body = await fetchJson(url);
  for (const field of SENSITIVE) {
    if (body[field] === CUSTOMER[field] || repository.open(body[field] as string) !== CUSTOMER[field]) {
      throw new Error(`bare node:crypto: ${field} is not the ciphertext of the stored value`);
    }
  }
  return {
    name: 'bare node:crypto',
    work: "the demo's 4 operations by hand: 1 stored envelope opened, 3 fields sealed for the response",
    url,
    app,
    rounds: [],
  };
}

async function plainVariant(): Promise<Variant> {
  const app = await createPlainCustomersApp();
  const base = await listen(app);
  const { id } = await app.get(PlainCustomersRepository).create(CUSTOMER);
  const url = `${base}/customers/${id}`;
  expectPlaintext('no encryption', await fetchJson(url));
  return { name: 'no encryption', work: 'none', url, app, rounds: [] };
}

async function expectCiphertexts(
  name: string,
  body: Record<string, unknown>,
  encryption: EncryptionService,
): Promise<void> {
  for (const field of SENSITIVE) {
    if (body[field] === CUSTOMER[field] || (await encryption.decrypt(body[field] as string)) !== CUSTOMER[field]) {
      throw new Error(`${name}: ${field} is not the ciphertext of the stored value`);
    }
  }
}

function expectPlaintext(name: string, body: Record<string, unknown>): void {
  for (const field of SENSITIVE) {
    if (body[field] !== CUSTOMER[field]) throw new Error(`${name}: ${field} is not the stored value`);
  }
}

async function fetchJson(url: string): Promise<Record<string, unknown>> {
  const response = await fetch(url);
  if (response.status !== 200) throw new Error(`GET ${url} answered ${response.status}`);
  return (await response.json()) as Record<string, unknown>;
}

/** One autocannon run against a variant, with this process's CPU time over the run. */
async function measureRun(
  load: LoadGenerator,
  variant: Variant,
  connections: number,
  durationSeconds: number,
): Promise<Measured> {
  const start = process.cpuUsage();
  const result = await load.run(variant.url, connections, durationSeconds);
  const cpu = process.cpuUsage(start);
  return { ...result, cpuMicrosPerRequest: (cpu.user + cpu.system) / result.requests };
}

/** A run with errors or non-2xx answers measured something else than the endpoint. */
function checked(variant: Variant, result: Measured): Measured {
  if (result.errors || result.non2xx || result.timeouts || result.requests === 0) {
    throw new Error(
      `${variant.name}: ${result.errors} errors, ${result.timeouts} timeouts, ${result.non2xx} non-2xx answers`,
    );
  }
  return result;
}

export interface LoadGenerator {
  run(url: string, connections: number, durationSeconds: number): Promise<LoadResult>;
  stop(): Promise<void>;
}

/** autocannon in its own process (http-load.ts), so it never shares the measured server's event loop. */
export async function startLoadGenerator(): Promise<LoadGenerator> {
  const child: ChildProcess = fork(fileURLToPath(new URL('./http-load.js', import.meta.url)), [], {
    execArgv: [],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  await new Promise<void>((resolve, reject) => {
    child.once('message', () => resolve());
    child.once('exit', (code) => reject(new Error(`the load generator exited with ${code} before it was ready`)));
  });
  let nextId = 1;
  return {
    run(url, connections, durationSeconds) {
      const request: LoadRequest = { id: nextId++, url, connections, durationSeconds };
      return new Promise<LoadResult>((resolve, reject) => {
        const onMessage = (message: LoadResult | { id: number; error: string }) => {
          if (message.id !== request.id) return;
          child.off('message', onMessage);
          if ('error' in message) reject(new Error(`autocannon: ${message.error}`));
          else resolve(message);
        };
        child.on('message', onMessage);
        child.send(request);
      });
    },
    async stop() {
      if (child.exitCode === null && child.connected) child.disconnect();
      await exited;
    },
  };
}

function numberFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}
