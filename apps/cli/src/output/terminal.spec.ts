import { colorsEnabled, formatDuration, makeStyle, renderTable } from './terminal.js';

describe('terminal output', () => {
  it('colours only a terminal without NO_COLOR or TERM=dumb', () => {
    expect(colorsEnabled({ isTTY: true }, {})).toBe(true);
    expect(colorsEnabled({ isTTY: true }, { NO_COLOR: '1' })).toBe(false);
    expect(colorsEnabled({ isTTY: true }, { TERM: 'dumb' })).toBe(false);
    expect(colorsEnabled({}, {})).toBe(false);
    expect(makeStyle(true).red('x')).toBe('\x1b[31mx\x1b[39m');
    expect(makeStyle(false).red('x')).toBe('x');
  });

  it('aligns table columns by visible width, ignoring colour codes', () => {
    const style = makeStyle(true);
    const table = renderTable(
      ['ID', 'N', 'STATE'],
      [
        ['k1', '5', style.green('active')],
        ['k10', '12', 'retired'],
      ],
      {
        numeric: [false, true, false],
        style: makeStyle(false),
      },
    );
    expect(table).toBe('ID    N  STATE\nk1    5  \x1b[32mactive\x1b[39m\nk10  12  retired\n');
  });

  it('formats durations with at most two units', () => {
    expect(formatDuration(850)).toBe('850ms');
    expect(formatDuration(12_000)).toBe('12s');
    expect(formatDuration(302_000)).toBe('5m 2s');
    expect(formatDuration(3 * 86_400_000 + 4 * 3_600_000 + 5 * 60_000)).toBe('3d 4h');
    expect(formatDuration(2 * 3_600_000 + 5_000)).toBe('2h');
  });
});
