import { formatCount, formatDuration } from './terminal.js';

export interface ProgressOptions {
  /** What is counted: `rows`, `lines`. */
  unit: string;
  /** Known total, for the percentage and the ETA. */
  total?: number;
  /** Already done before this process started (a resumed run). */
  initial: number;
  /** A redrawn bar on a terminal; otherwise one line per `intervalMs`. */
  tty: boolean;
  /** Progress lines as JSON objects (one per line) instead of text, when not on a terminal. */
  json: boolean;
  intervalMs: number;
  now?: () => number;
}

const BAR_WIDTH = 24;
const REDRAW_MS = 100;

/**
 * Count, rate and ETA of a long job, written to stderr so stdout stays the command's result: a bar
 * redrawn in place on a terminal, periodic lines otherwise (logs, CI, `--json`).
 */
export class ProgressReporter {
  private readonly now: () => number;
  private readonly startedAt: number;
  private lastWrite: number;
  private lastWrittenDone = -1;
  private done: number;
  private drawn = false;

  constructor(
    private readonly stream: NodeJS.WritableStream,
    private readonly options: ProgressOptions,
  ) {
    this.now = options.now ?? (() => performance.now());
    this.startedAt = this.now();
    // The first line comes after one interval: a job shorter than that prints only its final line.
    this.lastWrite = options.tty ? -Infinity : this.startedAt;
    this.done = options.initial;
  }

  update(done: number): void {
    this.done = done;
    const now = this.now();
    if (now - this.lastWrite < (this.options.tty ? REDRAW_MS : this.options.intervalMs)) return;
    this.lastWrite = now;
    this.write(false);
  }

  /** The final state; on a terminal the bar line is ended so later output starts on a new line. */
  finish(): void {
    if (this.options.tty || this.done !== this.lastWrittenDone) this.write(true);
  }

  /** Units per second in this process (a resumed run's earlier work is not counted as speed). */
  rate(): number {
    const seconds = (this.now() - this.startedAt) / 1000;
    return seconds > 0 ? (this.done - this.options.initial) / seconds : 0;
  }

  private write(final: boolean): void {
    const { total, unit, tty, json } = this.options;
    this.lastWrittenDone = this.done;
    const rate = this.rate();
    const remaining = total !== undefined ? Math.max(0, total - this.done) : undefined;
    const etaMs = remaining && rate > 0 ? (remaining / rate) * 1000 : undefined;
    const fraction = total ? Math.min(1, this.done / total) : undefined;
    if (tty) {
      const filled = Math.round((fraction ?? 0) * BAR_WIDTH);
      const bar = fraction === undefined ? '' : `[${'#'.repeat(filled)}${'-'.repeat(BAR_WIDTH - filled)}] `;
      const text =
        `${bar}${formatCount(this.done)}${total !== undefined ? `/${formatCount(total)}` : ''} ${unit}` +
        `${fraction !== undefined ? ` ${(fraction * 100).toFixed(0)}%` : ''}  ${formatCount(Math.round(rate))}/s` +
        `${etaMs !== undefined && !final ? `  ETA ${formatDuration(etaMs)}` : ''}`;
      this.stream.write(`\r\x1b[K${text}${final ? '\n' : ''}`);
      this.drawn = !final;
      return;
    }
    if (json) {
      this.stream.write(
        JSON.stringify({
          event: 'progress',
          unit,
          done: this.done,
          total,
          rate: Math.round(rate),
          etaSeconds: etaMs === undefined ? undefined : Math.round(etaMs / 1000),
        }) + '\n',
      );
      return;
    }
    this.stream.write(
      `progress: ${formatCount(this.done)}${total !== undefined ? `/${formatCount(total)}` : ''} ${unit}` +
        `${fraction !== undefined ? ` (${(fraction * 100).toFixed(1)}%)` : ''}, ${formatCount(Math.round(rate))} ${unit}/s` +
        `${etaMs !== undefined ? `, ETA ${formatDuration(etaMs)}` : ''}\n`,
    );
  }

  /** Clears a half-drawn bar before other stderr output. */
  clear(): void {
    if (this.drawn) this.stream.write('\r\x1b[K');
    this.drawn = false;
  }
}
