import type { Counter, LabelValues } from 'prom-client';

interface Pending<L extends string> {
  labels: LabelValues<L>;
  value: number;
}

/**
 * Increments of a prom-client `Counter`, added up in a plain map and handed to the counter when it is
 * read (on a scrape, through its `collect` hook). prom-client checks the labels, builds a hash string
 * and looks it up on every `inc()`: on the path of every encryption that was most of the metrics' cost.
 * A scrape shows exactly the same totals.
 */
export class DeferredCounter<L extends string> {
  private readonly pending = new Map<string, Pending<L>>();

  constructor(private readonly counter: Counter<L>) {
    const metric = counter as unknown as { collect?: (this: Counter<L>) => void | Promise<void> };
    const collect = metric.collect;
    const flush = () => this.flush();
    metric.collect = function (this: Counter<L>) {
      flush();
      return collect?.call(this);
    };
  }

  /** `key` names the label set (the same labels must always come with the same key). */
  inc(key: string, labels: LabelValues<L>, value = 1): void {
    const entry = this.pending.get(key);
    if (entry) entry.value += value;
    else this.pending.set(key, { labels, value });
  }

  flush(): void {
    for (const entry of this.pending.values()) {
      if (entry.value === 0) continue;
      this.counter.inc(entry.labels, entry.value);
      entry.value = 0;
    }
  }
}
