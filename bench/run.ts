import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

import { describeEnvironment, REPO_ROOT } from './environment.js';
import type { MeasureOptions } from './harness.js';
import { httpSuite } from './http.js';
import type { SuiteReport } from './report.js';
import { renderConsoleTable, renderMarkdown } from './report.js';
import type { Suite } from './suite.js';
import { batchSuite } from './suites/batch.suite.js';
import { eventLoopSuite } from './suites/event-loop.suite.js';
import { keyRingSuite } from './suites/key-ring.suite.js';
import { peersSuite } from './suites/peers.suite.js';
import { roundTripSuite } from './suites/round-trip.suite.js';

/**
 * `npm run bench`: runs every suite and writes docs/BENCHMARKS.md.
 * `--only <id>[,<id>]` (or `--suite <id>`) runs some suites (and then writes nothing unless `--write` is given);
 * BENCH_ROUNDS, BENCH_ROUND_MS and BENCH_WARMUP_MS change the method.
 */
const SUITES: Suite[] = [roundTripSuite, keyRingSuite, httpSuite, peersSuite, batchSuite, eventLoopSuite];

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const only = (valueOf(args, '--only') ?? valueOf(args, '--suite'))?.split(',');
  const suites = only ? SUITES.filter((suite) => only.includes(suite.id)) : SUITES;
  if (suites.length === 0) throw new Error(`No suite matches ${only?.join(',')}; known: ${SUITES.map((s) => s.id).join(', ')}`);
  const options: MeasureOptions = {
    rounds: numberFromEnv('BENCH_ROUNDS', 12),
    roundMs: numberFromEnv('BENCH_ROUND_MS', 250),
    warmupMs: numberFromEnv('BENCH_WARMUP_MS', 400),
  };
  const environment = describeEnvironment();
  console.log(`${environment.cpu} x${environment.cores}, Node.js ${environment.node}, OpenSSL ${environment.openssl}`);

  const reports: SuiteReport[] = [];
  for (const suite of suites) {
    console.log(`\n== ${suite.title}`);
    const start = Date.now();
    const result = await suite.run({ measure: options, log: (message) => console.log(`  ${message}`) });
    reports.push({ suite, result, durationMs: Date.now() - start });
    for (const table of result.tables) console.log(`\n${renderConsoleTable(table)}`);
    for (const t of result.targets) {
      console.log(`${t.met ? 'met    ' : 'NOT MET'}  ${t.description}: ${t.value.toFixed(2)} (>= ${t.minimum})`);
    }
  }

  if (!only || args.includes('--write')) {
    const file = join(REPO_ROOT, 'docs', 'BENCHMARKS.md');
    mkdirSync(join(REPO_ROOT, 'docs'), { recursive: true });
    writeFileSync(file, renderMarkdown(environment, options, reports));
    console.log(`\nWrote ${file}`);
    for (const extra of reports.flatMap((report) => report.result.files ?? [])) {
      writeFileSync(join(REPO_ROOT, extra.path), extra.content);
      console.log(`Wrote ${join(REPO_ROOT, extra.path)}`);
    }
  }
}

function valueOf(args: string[], flag: string): string | undefined {
  const index = args.indexOf(flag);
  return index >= 0 ? args[index + 1] : undefined;
}

function numberFromEnv(name: string, fallback: number): number {
  const value = Number(process.env[name] ?? fallback);
  if (!Number.isFinite(value) || value <= 0) throw new Error(`${name} must be a positive number`);
  return value;
}

main().catch((error: unknown) => {
  console.error(error);
  process.exitCode = 1;
});
