/** Text styling that disappears when colours are off (not a terminal, or NO_COLOR set). */
export interface Style {
  bold(text: string): string;
  dim(text: string): string;
  red(text: string): string;
  green(text: string): string;
  yellow(text: string): string;
  cyan(text: string): string;
}

const ANSI = /\x1b\[[0-9;]*m/g;

export function makeStyle(enabled: boolean): Style {
  const wrap = (open: number, close: number) => (text: string) =>
    enabled ? `\x1b[${open}m${text}\x1b[${close}m` : text;
  return {
    bold: wrap(1, 22),
    dim: wrap(2, 22),
    red: wrap(31, 39),
    green: wrap(32, 39),
    yellow: wrap(33, 39),
    cyan: wrap(36, 39),
  };
}

/** Colours only on a terminal, and never when NO_COLOR is set (https://no-color.org). */
export function colorsEnabled(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

const visibleLength = (text: string) => text.replace(ANSI, '').length;

/** Columns padded to their widest cell; right-aligned where `numeric[i]`. */
export function renderTable(
  headers: string[],
  rows: string[][],
  options: { numeric?: boolean[]; style: Style },
): string {
  const widths = headers.map((header, i) =>
    Math.max(visibleLength(header), ...rows.map((row) => visibleLength(row[i] ?? ''))),
  );
  const line = (cells: string[]) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(widths[i] - visibleLength(cell));
        if (i === cells.length - 1 && !options.numeric?.[i]) return cell;
        return options.numeric?.[i] ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return [options.style.bold(line(headers)), ...rows.map(line)].join('\n') + '\n';
}

export function formatCount(value: number): string {
  return value.toLocaleString('en-US');
}

/** `3d 4h`, `5m 2s`, `12s`, `850ms`: two units at most, enough for key ages and ETAs. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms)) return '?';
  if (ms < 1000) return `${Math.max(0, Math.round(ms))}ms`;
  const units: [string, number][] = [
    ['d', 86_400_000],
    ['h', 3_600_000],
    ['m', 60_000],
    ['s', 1000],
  ];
  const parts: string[] = [];
  let rest = Math.round(ms / 1000) * 1000;
  for (const [name, size] of units) {
    if (rest >= size || parts.length) {
      const count = Math.floor(rest / size);
      rest -= count * size;
      if (count || parts.length) parts.push(`${count}${name}`);
    }
    if (parts.length === 2) break;
  }
  return parts.filter((part) => !/^0/.test(part)).join(' ') || '0s';
}

/** `2h ago` from an ISO time or Date. */
export function ago(at: Date | string, now = Date.now()): string {
  return `${formatDuration(now - new Date(at).getTime())} ago`;
}
