/**
 * Time-series charts (uPlot, bundled) with their text alternative: every chart is followed by a
 * collapsible table of the same numbers, and the figure is labelled for screen readers.
 */
import { useEffect, useRef, useState } from 'preact/hooks';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import { fmtBucket } from '../format.js';

export interface Series {
  readonly label: string;
  readonly values: readonly (number | null)[];
}

export interface TimeChartProps {
  /** Names the chart for assistive technology and titles its table. */
  readonly title: string;
  readonly buckets: readonly string[];
  readonly series: readonly Series[];
  readonly interval: string;
  readonly format: (value: number | null) => string;
  readonly height?: number;
  /** Percent scale from 0 to 1. */
  readonly rate?: boolean;
}

/** Chart colours, read from CSS custom properties so both themes get readable lines. */
function palette(): string[] {
  const style = getComputedStyle(document.documentElement);
  return Array.from({ length: 8 }, (_, i) => style.getPropertyValue(`--series-${i + 1}`).trim() || '#888');
}

function useTheme(): string {
  const [theme, setTheme] = useState(() => document.documentElement.dataset.theme ?? '');
  useEffect(() => {
    const observer = new MutationObserver(() => setTheme(document.documentElement.dataset.theme ?? ''));
    observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
    const media = matchMedia('(prefers-color-scheme: dark)');
    const onMedia = (): void => setTheme(`${document.documentElement.dataset.theme ?? ''}:${media.matches}`);
    media.addEventListener('change', onMedia);
    return () => {
      observer.disconnect();
      media.removeEventListener('change', onMedia);
    };
  }, []);
  return theme;
}

export function TimeChart(props: TimeChartProps) {
  const host = useRef<HTMLDivElement>(null);
  const theme = useTheme();
  const { buckets, series, format, rate } = props;
  const height = props.height ?? 220;

  useEffect(() => {
    const el = host.current;
    if (!el || buckets.length === 0) return;
    const colors = palette();
    const style = getComputedStyle(document.documentElement);
    const axisColor = style.getPropertyValue('--muted').trim() || '#666';
    const gridColor = style.getPropertyValue('--grid').trim() || '#ddd';
    const xs = buckets.map((b) => Date.parse(b) / 1000);
    const data: uPlot.AlignedData = [xs, ...series.map((s) => s.values.map((v) => (v === null ? null : v)))];
    const axis = { stroke: axisColor, grid: { stroke: gridColor, width: 1 }, ticks: { stroke: gridColor } };
    const plot = new uPlot(
      {
        width: Math.max(200, el.clientWidth),
        height,
        legend: { show: series.length > 1, live: false },
        cursor: { drag: { x: false, y: false } },
        scales: { x: { time: true }, ...(rate ? { y: { range: [0, 1] } } : {}) },
        axes: [
          { ...axis },
          { ...axis, size: 56, values: (_u: uPlot, ticks: number[]) => ticks.map((t) => format(t)) },
        ],
        series: [
          {},
          ...series.map((s, i) => ({
            label: s.label,
            stroke: colors[i % colors.length] as string,
            width: 2,
            spanGaps: false,
            value: (_u: uPlot, v: number | null) => format(v),
          })),
        ],
      },
      data,
      el,
    );
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(200, el.clientWidth), height }));
    resize.observe(el);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [buckets, series, format, rate, height, theme]);

  if (buckets.length === 0) return <p class="empty">No data in this range.</p>;
  return (
    <figure class="chart">
      <div
        ref={host}
        role="img"
        aria-label={`${props.title}: chart, ${series.length} series; the table below has the numbers`}
      />
      <details class="as-table">
        <summary>Show as table</summary>
        <div class="table-scroll">
          <table>
            <caption>{props.title}</caption>
            <thead>
              <tr>
                <th scope="col">Period</th>
                {series.map((s) => (
                  <th scope="col" key={s.label}>
                    {s.label}
                  </th>
                ))}
              </tr>
            </thead>
            <tbody>
              {buckets.map((b, i) => (
                <tr key={b}>
                  <th scope="row">{fmtBucket(b, props.interval)}</th>
                  {series.map((s) => (
                    <td key={s.label} class="num">
                      {format(s.values[i] ?? null)}
                    </td>
                  ))}
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      </details>
    </figure>
  );
}

/** A horizontal bar inside a table cell: width from the value, the number itself as text beside it. */
export function Bar(props: { readonly share: number; readonly label: string }) {
  const width = `${Math.max(0, Math.min(1, props.share)) * 100}%`;
  return (
    <span class="bar">
      <span class="bar-track" aria-hidden="true">
        <span class="bar-fill" style={{ width }} />
      </span>
      <span class="bar-label">{props.label}</span>
    </span>
  );
}
