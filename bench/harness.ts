/**
 * Measures throughput of competing operations fairly on a noisy machine: each contender is warmed
 * up, then the contenders take turns in batches of a few milliseconds for a number of fixed-length
 * rounds, so background noise lands on every contender alike. Results are medians over rounds; ratios
 * are the median of per-round ratios, because a ratio within one round compares neighbours in time.
 *
 * Every batch is timed twice: by the wall clock (what ops/s means) and by this process's CPU time
 * (user + system, all threads, so GC helpers and zlib's thread pool count). When other processes
 * compete for the cores, the wall clock also counts the time this process waited for a core; CPU
 * time doesn't, which makes it the steadier basis for comparing contenders.
 */
import { setFlagsFromString } from 'node:v8';
import { runInNewContext } from 'node:vm';

// Every round starts from a collected heap, so it doesn't pay for garbage an earlier round left.
setFlagsFromString('--expose-gc');
const collectGarbage = runInNewContext('gc') as () => void;

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

export type Clock = 'wall' | 'cpu';

export interface ContenderResult {
  name: string;
  /** Operations per wall-clock second, median over rounds. */
  opsPerSec: number;
  /** Operations per second of this process's CPU time, median over rounds. */
  opsPerCpuSec: number;
  /** MB/s (10^6 bytes) at the median wall-clock rate, when `bytesPerOp` is known. */
  mbPerSec?: number;
  /** Relative spread of the rounds by `clock`: (max - min) / median. */
  spread(clock: Clock): number;
}

export interface Measurement {
  results: ContenderResult[];
  /** Median over rounds of `results[index] / results[baseline]` measured in the same round. */
  ratio(index: number, baseline: number, clock: Clock): number;
  /**
   * First and third quartile of the same per-round ratios: the middle half of the rounds. A ratio
   * whose range straddles a target can't be told apart from it on this machine at this load.
   */
  ratioRange(index: number, baseline: number, clock: Clock): [number, number];
}

/** Aim for batches this long between clock reads, so reading the clocks doesn't skew fast operations. */
const BATCH_TARGET_NS = 5_000_000;

interface RoundRates {
  wall: number;
  cpu: number;
}

export async function measure(contenders: readonly Contender[], options: MeasureOptions): Promise<Measurement> {
  const batches = [];
  for (const contender of contenders) batches.push(await calibrate(contender, options.warmupMs));

  const rounds: RoundRates[][] = contenders.map(() => []);
  for (let round = 0; round < options.rounds; round++) {
    collectGarbage();
    const rates = await interleavedRound(contenders, batches, options.roundMs);
    rates.forEach((rate, index) => rounds[index].push(rate));
    if (process.env.BENCH_VERBOSE) {
      console.log(
        `    round ${round + 1} ops/s wall | cpu: ${rates.map((r) => `${Math.round(r.wall)} | ${Math.round(r.cpu)}`).join(', ')}`,
      );
    }
  }

  const series = (index: number, clock: Clock) => rounds[index].map((rate) => rate[clock]);
  const results = contenders.map((contender, index): ContenderResult => {
    const opsPerSec = median(series(index, 'wall'));
    return {
      name: contender.name,
      opsPerSec,
      opsPerCpuSec: median(series(index, 'cpu')),
      mbPerSec: contender.bytesPerOp === undefined ? undefined : (opsPerSec * contender.bytesPerOp) / 1e6,
      spread: (clock) => {
        const values = series(index, clock);
        return (Math.max(...values) - Math.min(...values)) / median(values);
      },
    };
  });
  const ratios = (index: number, baseline: number, clock: Clock) => {
    const base = series(baseline, clock);
    return series(index, clock).map((ops, round) => ops / base[round]);
  };
  return {
    results,
    ratio: (index, baseline, clock) => median(ratios(index, baseline, clock)),
    ratioRange: (index, baseline, clock) => {
      const values = ratios(index, baseline, clock);
      return [quantile(values, 0.25), quantile(values, 0.75)];
    },
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
 * One round: the contenders take turns, one batch each, until each has run for `roundMs` of wall
 * time. Taking turns every few milliseconds means a burst of noise from other processes hits all of
 * them alike; shuffling the turns means the work one contender leaves behind (garbage to collect,
 * buffers a worker thread sent back) doesn't always land on the same neighbour.
 */
async function interleavedRound(
  contenders: readonly Contender[],
  batches: number[],
  roundMs: number,
): Promise<RoundRates[]> {
  const deadline = roundMs * 1e6;
  const calls = contenders.map(() => 0);
  const wall = contenders.map(() => 0);
  const cpu = contenders.map(() => 0);
  const order = contenders.map((_, index) => index);
  while (wall.some((ns) => ns < deadline)) {
    shuffle(order);
    for (const index of order) {
      if (wall[index] >= deadline) continue;
      const cpuStart = process.cpuUsage();
      const start = process.hrtime.bigint();
      await runBatch(contenders[index].run, batches[index]);
      // One turn of the event loop inside the timed window: the work V8 defers to the loop (finishing a
      // collection, freeing the batch's large buffers) is charged to the batch that caused it. Without it a
      // synchronous contender never yields, and its deferred work landed on the next, asynchronous one:
      // a bare 1 MiB round trip merely wrapped in an async function measured 0.93-0.95 of itself.
      await new Promise<void>((resolve) => setImmediate(resolve));
      wall[index] += Number(process.hrtime.bigint() - start);
      const used = process.cpuUsage(cpuStart);
      cpu[index] += (used.user + used.system) * 1000;
      calls[index] += batches[index];
    }
  }
  return calls.map((count, index) => ({ wall: (count * 1e9) / wall[index], cpu: (count * 1e9) / cpu[index] }));
}

/** Fisher-Yates, in place. */
function shuffle(values: number[]): void {
  for (let i = values.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [values[i], values[j]] = [values[j], values[i]];
  }
}

async function runBatch(run: () => unknown, batch: number): Promise<void> {
  for (let i = 0; i < batch; i++) {
    const result = run();
    if (result instanceof Promise) await result;
  }
}

export function median(values: readonly number[]): number {
  return quantile(values, 0.5);
}

/** Linear interpolation between closest ranks. */
export function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  const position = (sorted.length - 1) * q;
  const below = Math.floor(position);
  const above = Math.ceil(position);
  return sorted[below] + (sorted[above] - sorted[below]) * (position - below);
}
