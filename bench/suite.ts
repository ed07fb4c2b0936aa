import type { MeasureOptions } from './harness.js';

/**
 * One benchmark comparison. A suite sets up its contenders, measures them with `measure()` and
 * returns tables and target checks; `run.ts` prints them and writes docs/BENCHMARKS.md. To add a
 * benchmark (HTTP with autocannon, peer libraries...), write a suite and list it in `run.ts`.
 */
export interface Suite {
  /** Short id for `--only <id>`. */
  id: string;
  title: string;
  run(context: SuiteContext): Promise<SuiteResult>;
}

export interface SuiteContext {
  measure: MeasureOptions;
  /** Progress output for the console only. */
  log(message: string): void;
}

export interface SuiteResult {
  /** Markdown paragraphs shown above the tables: what is measured and how. */
  description: string[];
  tables: Table[];
  targets: TargetCheck[];
  /** Markdown paragraphs shown below the tables: interpretation. */
  notes?: string[];
  /** Files written beside docs/BENCHMARKS.md (path relative to the repository root), e.g. a chart. */
  files?: { path: string; content: string }[];
}

export interface Table {
  caption?: string;
  headers: string[];
  rows: string[][];
}

export interface TargetCheck {
  description: string;
  /** The measured value, e.g. a ratio. */
  value: number;
  minimum: number;
  met: boolean;
}

export function target(description: string, value: number, minimum: number): TargetCheck {
  return { description, value, minimum, met: value >= minimum };
}

export function formatOps(value: number): string {
  return value >= 100 ? Math.round(value).toLocaleString('en-US') : value.toFixed(1);
}

export function formatMb(value: number | undefined): string {
  return value === undefined ? '' : value >= 100 ? value.toFixed(0) : value.toFixed(1);
}

export function formatRatio(value: number): string {
  return value.toFixed(2);
}

export function formatSpread(value: number): string {
  return `±${((value / 2) * 100).toFixed(0)}%`;
}
