import { ProgressReporter } from './progress.js';

function sink() {
  const chunks: string[] = [];
  return { chunks, stream: { write: (chunk: string) => chunks.push(chunk) } as unknown as NodeJS.WritableStream };
}

describe('ProgressReporter', () => {
  it('redraws one bar in place on a terminal: count, percentage, rate and ETA', () => {
    let now = 0;
    const { chunks, stream } = sink();
    const progress = new ProgressReporter(stream, {
      unit: 'rows',
      total: 100_000,
      initial: 0,
      tty: true,
      json: false,
      intervalMs: 5000,
      now: () => now,
    });
    now = 2000;
    progress.update(25_000);
    expect(chunks).toEqual(['\r\x1b[K[######------------------] 25,000/100,000 rows 25%  12,500/s  ETA 6s']);
    now = 2050;
    progress.update(26_000); // redrawn at most every 100 ms
    expect(chunks).toHaveLength(1);
    now = 8000;
    progress.update(100_000);
    progress.finish();
    expect(chunks.at(-1)).toBe('\r\x1b[K[########################] 100,000/100,000 rows 100%  12,500/s\n');
  });

  it("writes a line per interval otherwise, and counts a resumed run's earlier work in the total but not in the rate", () => {
    let now = 0;
    const { chunks, stream } = sink();
    const progress = new ProgressReporter(stream, {
      unit: 'lines',
      total: 10_000,
      initial: 4_000,
      tty: false,
      json: false,
      intervalMs: 1000,
      now: () => now,
    });
    now = 500;
    progress.update(5_000); // before the first interval: nothing
    now = 1000;
    progress.update(6_000);
    now = 1500;
    progress.update(7_000);
    expect(chunks).toEqual(['progress: 6,000/10,000 lines (60.0%), 2,000 lines/s, ETA 2s\n']);
    now = 2000;
    progress.update(10_000);
    progress.finish(); // the same state is not written twice
    expect(chunks.slice(1)).toEqual(['progress: 10,000/10,000 lines (100.0%), 3,000 lines/s\n']);
  });

  it('writes JSON lines for --json when not on a terminal', () => {
    let now = 0;
    const { chunks, stream } = sink();
    const progress = new ProgressReporter(stream, {
      unit: 'rows',
      total: 10,
      initial: 0,
      tty: false,
      json: true,
      intervalMs: 0,
      now: () => now,
    });
    now = 1000;
    progress.update(4);
    expect(chunks.map((chunk) => JSON.parse(chunk))).toEqual([
      { event: 'progress', unit: 'rows', done: 4, total: 10, rate: 4, etaSeconds: 2 },
    ]);
  });
});
