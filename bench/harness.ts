/**
 * Measures throughput of competing operations fairly on a noisy machine: each contender is warmed
 * up, then the contenders take turns in batches of a few milliseconds for a number of fixed-length
 * rounds, so background noise lands on every contender alike. Results are medians over rounds; ratios
 * are the median of per-round ratios, because a ratio within one round compares neighbours in time.
 */

/** One operation to measure; `run` may be sync or return a promise (awaited before the next call). */
export interface Contender {
  name: string;
  run: () => unknown;
  /** Payload bytes one operation processes, for MB/s. */
  bytesPerOp?: number;
}

export interface MeasureOptions {
  rounds: number;
  roundMs: number;
  warmupMs: number;
}

export interface ContenderResult {
  name: string;
  /** Median over rounds. */
  opsPerSec: number;
  /** MB/s (10^6 bytes) at the median rate, when `bytesPerOp` is known. */
  mbPerSec?: number;
  /** Relative spread of the rounds: (max - min) / median. */
  spread: number;
  rounds: number[];
}

export interface Measurement {
  results: ContenderResult[];
  /** Median over rounds of `results[index] / results[baseline]` measured in the same round. */
  ratio(index: number, baseline: number): number;
}

/** Aim for batches this long between clock reads, so reading the clock doesn't skew fast operations. */
const BATCH_TARGET_NS = 5_000_000;

export async function measure(contenders: readonly Contender[], options: MeasureOptions): Promise<Measurement> {
  const batches = [];
  for (const contender of contenders) batches.push(await calibrate(contender, options.warmupMs));

  const rounds: number[][] = contenders.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    const perSecond = await interleavedRound(contenders, batches, options.roundMs, round);
    perSecond.forEach((ops, index) => rounds[index].push(ops));
    if (process.env.BENCH_VERBOSE) console.log(`    round ${round + 1}: ${perSecond.map((ops) => Math.round(ops)).join(' ')} ops/s`);
  }

  const results = contenders.map((contender, index): ContenderResult => {
    const opsPerSec = median(rounds[index]);
    return {
      name: contender.name,
      opsPerSec,
      mbPerSec: contender.bytesPerOp === undefined ? undefined : (opsPerSec * contender.bytesPerOp) / 1e6,
      spread: (Math.max(...rounds[index]) - Math.min(...rounds[index])) / opsPerSec,
      rounds: rounds[index],
    };
  });
  return {
    results,
    ratio: (index, baseline) => median(rounds[index].map((ops, round) => ops / rounds[baseline][round])),
  };
}

/** Warms the contender up (JIT, caches) and returns how many calls make one batch of about BATCH_TARGET_NS. */
async function calibrate(contender: Contender, warmupMs: number): Promise<number> {
  let batch = 1;
  let calls = 0;
  const start = process.hrtime.bigint();
  let elapsed = 0n;
  while (elapsed < BigInt(warmupMs) * 1_000_000n) {
    await runBatch(contender.run, batch);
    calls += batch;
    elapsed = process.hrtime.bigint() - start;
    batch = Math.max(1, Math.min(batch * 2, Math.round((calls * BATCH_TARGET_NS) / Number(elapsed))));
  }
  return batch;
}

/**
 * One round: the contenders take turns, one batch each, until each has run for `roundMs`. Taking
 * turns every few milliseconds means a burst of noise from other processes hits all of them alike.
 */
async function interleavedRound(contenders: readonly Contender[], batches: number[], roundMs: number, round: number): Promise<number[]> {
  const deadline = roundMs * 1e6;
  const calls = contenders.map(() => 0);
  const elapsed = contenders.map(() => 0);
  while (elapsed.some((ns) => ns < deadline)) {
    for (let k = 0; k < contenders.length; k++) {
      const index = (k + round) % contenders.length;
      if (elapsed[index] >= deadline) continue;
      const start = process.hrtime.bigint();
      await runBatch(contenders[index].run, batches[index]);
      elapsed[index] += Number(process.hrtime.bigint() - start);
      calls[index] += batches[index];
    }
  }
  return calls.map((count, index) => (count * 1e9) / elapsed[index]);
}

async function runBatch(run: () => unknown, batch: number): Promise<void> {
  for (let i = 0; i < batch; i++) {
    const result = run();
    if (result instanceof Promise) await result;
  }
}

export function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = sorted.length >> 1;
  return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
