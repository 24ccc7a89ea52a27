// Requests and credits per day for the last 30 days, API and MCP stacked (uPlot: a small canvas chart library
// with no dependencies, ~20 KB gzipped, loaded with this page only). The canvas is hidden from assistive
// technology; its text alternative is the summary under each chart and the per-day table beside it, made from
// the same numbers (GET /v1/me/usage/aggregates?interval=day&group_by=channel).
import { useEffect, useMemo, useRef, useState, useSyncExternalStore } from 'react';
import uPlot from 'uplot';
import 'uplot/dist/uPlot.min.css';
import type { components } from '@openrush/client';
import { $api } from '../../api.ts';
import { formatNumber } from '../../format.ts';
import { QueryState } from '../../states.tsx';
import { CHANNEL_LABELS, type Channel } from './filters.ts';

type Aggregates = components['schemas']['UsageAggregates'];
const DAY_MS = 86_400_000;
const CHANNELS = Object.keys(CHANNEL_LABELS) as Channel[];

export interface DaySeries {
  /** Start of each UTC day, oldest first (every day of the range, with or without requests). */
  days: number[];
  requests: Record<Channel, number[]>;
  credits: Record<Channel, number[]>;
  totals: { requests: Record<Channel, number>; credits: Record<Channel, number> };
}

/** Every day of the answer's range, the days without a bucket as zeros. */
export function perDay(aggregates: Aggregates): DaySeries {
  const start = Date.parse(aggregates.from);
  const end = Date.parse(aggregates.to);
  const days: number[] = [];
  for (let day = start; day < end; day += DAY_MS) days.push(day);
  const zeros = () => Object.fromEntries(CHANNELS.map((channel) => [channel, days.map(() => 0)])) as Record<Channel, number[]>;
  const requests = zeros();
  const credits = zeros();
  for (const bucket of aggregates.buckets) {
    const index = Math.floor((Date.parse(bucket.start) - start) / DAY_MS);
    const channel = bucket.group as Channel;
    if (index < 0 || index >= days.length || !requests[channel]) continue;
    requests[channel][index]! += bucket.requests;
    credits[channel][index]! += bucket.credits;
  }
  const sum = (values: number[]) => values.reduce((total, value) => total + value, 0);
  const totals = {
    requests: Object.fromEntries(CHANNELS.map((channel) => [channel, sum(requests[channel])])) as Record<Channel, number>,
    credits: Object.fromEntries(CHANNELS.map((channel) => [channel, sum(credits[channel])])) as Record<Channel, number>,
  };
  return { days, requests, credits, totals };
}

const dayFormat = new Intl.DateTimeFormat(undefined, { month: 'short', day: 'numeric', timeZone: 'UTC' });

// Re-draw when the theme changes (the person's choice on <html data-theme>, or the system's).
function subscribeTheme(onChange: () => void): () => void {
  const observer = new MutationObserver(onChange);
  observer.observe(document.documentElement, { attributes: true, attributeFilter: ['data-theme'] });
  const media = window.matchMedia('(prefers-color-scheme: dark)');
  media.addEventListener('change', onChange);
  return () => {
    observer.disconnect();
    media.removeEventListener('change', onChange);
  };
}
function themeKey(): string {
  return `${document.documentElement.dataset['theme'] ?? ''}/${window.matchMedia('(prefers-color-scheme: dark)').matches}`;
}

const SERIES_COLOURS: Record<Channel, string> = { api: '--chart-api', mcp: '--chart-mcp' };

/** One stacked-bar chart: each channel's bar on top of the previous ones. */
function StackedBars({ days, values, label }: { days: number[]; values: Record<Channel, number[]>; label: string }) {
  const holder = useRef<HTMLDivElement>(null);
  const theme = useSyncExternalStore(subscribeTheme, themeKey);
  useEffect(() => {
    const element = holder.current;
    if (!element) return undefined;
    const style = getComputedStyle(element);
    const colour = (name: string) => style.getPropertyValue(name).trim();
    // Stacked: the i-th series is the sum of the first i channels; drawn top-down so each bar covers the one above it.
    const stacked: number[][] = [];
    let running = days.map(() => 0);
    for (const channel of CHANNELS) {
      running = running.map((total, index) => total + values[channel][index]!);
      stacked.push(running);
    }
    const order = [...CHANNELS.keys()].reverse();
    const bars = uPlot.paths.bars!({ size: [0.7, 28], gap: 1 });
    const axis = { stroke: colour('--muted'), grid: { stroke: colour('--border'), width: 1 }, ticks: { stroke: colour('--border'), width: 1 } };
    const options: uPlot.Options = {
      width: Math.max(element.clientWidth, 280),
      height: 180,
      legend: { show: false },
      cursor: { show: false },
      // Half a day either side, so the first and last days' bars are not cut in half.
      scales: { x: { time: true, range: (_u, min, max) => [min - 43_200, max + 43_200] }, y: { range: (_u, _min, max) => [0, Math.max(1, max)] } },
      axes: [
        { ...axis, values: (_u, splits) => splits.map((split) => dayFormat.format(new Date(split * 1000))) },
        { ...axis, size: 50 },
      ],
      series: [
        {},
        ...order.map((index) => ({
          label: CHANNEL_LABELS[CHANNELS[index]!],
          fill: colour(SERIES_COLOURS[CHANNELS[index]!]),
          stroke: colour(SERIES_COLOURS[CHANNELS[index]!]),
          width: 0,
          paths: bars,
          points: { show: false },
        })),
      ],
    };
    const data: uPlot.AlignedData = [days.map((day) => day / 1000 + 43_200), ...order.map((index) => stacked[index]!)];
    const plot = new uPlot(options, data, element);
    const resize = new ResizeObserver(() => plot.setSize({ width: Math.max(element.clientWidth, 280), height: 180 }));
    resize.observe(element);
    return () => {
      resize.disconnect();
      plot.destroy();
    };
  }, [days, values, theme]);
  return <div className="chart" ref={holder} aria-hidden="true" data-chart={label} />;
}

function Legend() {
  return (
    <ul className="chart-legend" aria-hidden="true">
      {CHANNELS.map((channel) => (
        <li key={channel}>
          <span className={`swatch swatch-${channel}`} /> {CHANNEL_LABELS[channel]}
        </li>
      ))}
    </ul>
  );
}

function summary(what: string, totals: Record<Channel, number>): string {
  const total = CHANNELS.reduce((sum, channel) => sum + totals[channel], 0);
  return `${formatNumber(total)} ${what} (${CHANNELS.map((channel) => `${CHANNEL_LABELS[channel]} ${formatNumber(totals[channel])}`).join(', ')})`;
}

function ChartBody({ aggregates }: { aggregates: Aggregates }) {
  const series = useMemo(() => perDay(aggregates), [aggregates]);
  const [showTable, setShowTable] = useState(false);
  const text = `Last 30 days: ${summary('requests', series.totals.requests)} and ${summary('credits', series.totals.credits)}.`;
  return (
    <>
      <p className="chart-summary" id="usage-chart-summary">
        {text}
      </p>
      <Legend />
      <div className="charts">
        <figure aria-labelledby="requests-chart-title" aria-describedby="usage-chart-summary">
          <figcaption id="requests-chart-title">Requests per day</figcaption>
          <StackedBars days={series.days} values={series.requests} label="requests" />
        </figure>
        <figure aria-labelledby="credits-chart-title" aria-describedby="usage-chart-summary">
          <figcaption id="credits-chart-title">Credits per day</figcaption>
          <StackedBars days={series.days} values={series.credits} label="credits" />
        </figure>
      </div>
      <button type="button" aria-expanded={showTable} aria-controls="usage-chart-table" onClick={() => setShowTable(!showTable)}>
        {showTable ? 'Hide' : 'Show'} the numbers per day
      </button>
      {/* Focusable: it scrolls, and a keyboard user must be able to scroll it. */}
      <div className="table-wrap" id="usage-chart-table" hidden={!showTable} tabIndex={0} role="region" aria-label="Requests and credits per day">
        <table>
          <caption className="visually-hidden">Requests and credits per day (UTC), last 30 days</caption>
          <thead>
            <tr>
              <th scope="col">Day (UTC)</th>
              {CHANNELS.map((channel) => (
                <th scope="col" key={`r-${channel}`}>
                  {CHANNEL_LABELS[channel]} requests
                </th>
              ))}
              {CHANNELS.map((channel) => (
                <th scope="col" key={`c-${channel}`}>
                  {CHANNEL_LABELS[channel]} credits
                </th>
              ))}
            </tr>
          </thead>
          <tbody>
            {series.days.map((day, index) => (
              <tr key={day}>
                <th scope="row">{dayFormat.format(new Date(day))}</th>
                {CHANNELS.map((channel) => (
                  <td key={`r-${channel}`}>{formatNumber(series.requests[channel][index]!)}</td>
                ))}
                {CHANNELS.map((channel) => (
                  <td key={`c-${channel}`}>{formatNumber(series.credits[channel][index]!)}</td>
                ))}
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

/**
 * The last 30 days (the API's default range for day buckets), whatever the list's filters. Asked for once `ready`
 * (the page's records have come), so the records, the page's main content, do not wait behind the totals.
 */
export function UsageChart({ ready }: { ready: boolean }) {
  const aggregates = $api.useQuery('get', '/v1/me/usage/aggregates', { params: { query: { interval: 'day', group_by: 'channel' } } }, { enabled: ready });
  return (
    <section aria-labelledby="chart-heading" className="usage-chart">
      <h2 id="chart-heading">Last 30 days</h2>
      <p className="help">Every request of the account per UTC day, API and MCP stacked; the filters below do not apply here.</p>
      <QueryState query={aggregates} what="the totals per day">
        {(data) => <ChartBody aggregates={data} />}
      </QueryState>
    </section>
  );
}
