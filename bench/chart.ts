/**
 * A grouped bar chart as a standalone SVG, drawn from the benchmark's own numbers: one group per
 * payload, one bar per library, on a logarithmic axis (the libraries differ by orders of magnitude).
 */
export interface ChartSeries {
  name: string;
  /** One value per group; `undefined` where the library has nothing to measure (drawn as "n/a"). */
  values: (number | undefined)[];
}

export interface BarChart {
  title: string;
  subtitle: string;
  yLabel: string;
  groups: string[];
  series: ChartSeries[];
}

const COLORS = ['#1b1b1b', '#d1495b', '#ef8a17', '#2e86ab', '#7b2cbf', '#3a7d44', '#8d6e63', '#00a6a6', '#6c757d'];

export function renderBarChartSvg(chart: BarChart): string {
  const width = 1000;
  const height = 560;
  const margin = { top: 70, right: 20, bottom: 150, left: 80 };
  const plotWidth = width - margin.left - margin.right;
  const plotHeight = height - margin.top - margin.bottom;
  const values = chart.series.flatMap((s) => s.values).filter((v): v is number => v !== undefined && v > 0);
  const low = Math.floor(Math.log10(Math.min(...values)));
  const high = Math.ceil(Math.log10(Math.max(...values)));
  const y = (value: number) => margin.top + plotHeight - ((Math.log10(value) - low) / Math.max(1, high - low)) * plotHeight;
  const groupWidth = plotWidth / chart.groups.length;
  const barWidth = (groupWidth * 0.84) / chart.series.length;
  const out: string[] = [];
  out.push(
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="Helvetica, Arial, sans-serif">`,
    `<rect width="${width}" height="${height}" fill="#ffffff"/>`,
    `<text x="${width / 2}" y="28" text-anchor="middle" font-size="20" font-weight="bold">${escape(chart.title)}</text>`,
    `<text x="${width / 2}" y="50" text-anchor="middle" font-size="13" fill="#555">${escape(chart.subtitle)}</text>`,
  );
  for (let power = low; power <= high; power++) {
    const at = y(10 ** power);
    out.push(
      `<line x1="${margin.left}" x2="${width - margin.right}" y1="${at.toFixed(1)}" y2="${at.toFixed(1)}" stroke="#ddd"/>`,
      `<text x="${margin.left - 8}" y="${(at + 4).toFixed(1)}" text-anchor="end" font-size="12">${formatPower(power)}</text>`,
    );
  }
  out.push(
    `<text transform="translate(22 ${margin.top + plotHeight / 2}) rotate(-90)" text-anchor="middle" font-size="13">${escape(chart.yLabel)}</text>`,
    `<line x1="${margin.left}" x2="${margin.left}" y1="${margin.top}" y2="${margin.top + plotHeight}" stroke="#333"/>`,
  );
  chart.groups.forEach((group, g) => {
    const groupX = margin.left + g * groupWidth + groupWidth * 0.08;
    chart.series.forEach((series, s) => {
      const x = groupX + s * barWidth;
      const value = series.values[g];
      const color = COLORS[s % COLORS.length];
      if (value === undefined || value <= 0) {
        out.push(
          `<text transform="translate(${(x + barWidth / 2 + 3).toFixed(1)} ${(margin.top + plotHeight - 4).toFixed(1)}) rotate(-90)" font-size="9" fill="#999">n/a</text>`,
        );
        return;
      }
      const top = y(value);
      out.push(
        `<rect x="${x.toFixed(1)}" y="${top.toFixed(1)}" width="${(barWidth - 2).toFixed(1)}" height="${(margin.top + plotHeight - top).toFixed(1)}" fill="${color}"><title>${escape(`${series.name}, ${group}: ${formatValue(value)}`)}</title></rect>`,
        `<text transform="translate(${(x + barWidth / 2 + 2).toFixed(1)} ${(top - 4).toFixed(1)}) rotate(-90)" font-size="9" fill="#333">${formatValue(value)}</text>`,
      );
    });
    out.push(
      `<text x="${(margin.left + (g + 0.5) * groupWidth).toFixed(1)}" y="${margin.top + plotHeight + 20}" text-anchor="middle" font-size="13">${escape(group)}</text>`,
    );
  });
  out.push(`<line x1="${margin.left}" x2="${width - margin.right}" y1="${margin.top + plotHeight}" y2="${margin.top + plotHeight}" stroke="#333"/>`);
  const columns = 3;
  chart.series.forEach((series, s) => {
    const x = margin.left + (s % columns) * (plotWidth / columns);
    const legendY = margin.top + plotHeight + 50 + Math.floor(s / columns) * 22;
    out.push(
      `<rect x="${x}" y="${legendY - 11}" width="14" height="14" fill="${COLORS[s % COLORS.length]}"/>`,
      `<text x="${x + 20}" y="${legendY}" font-size="13">${escape(series.name)}</text>`,
    );
  });
  out.push('</svg>', '');
  return out.join('\n');
}

function formatPower(power: number): string {
  const value = 10 ** power;
  return value >= 1 ? value.toLocaleString('en-US') : value.toString();
}

function formatValue(value: number): string {
  if (value >= 100) return Math.round(value).toLocaleString('en-US');
  if (value >= 1) return value.toFixed(1);
  return value.toPrecision(2);
}

function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}
