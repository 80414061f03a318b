import { useMemo, useState } from 'preact/hooks';
import type { InstallsResponse, TrendsResponse } from '../api.js';
import { fmtInt } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { TimeChart } from './chart.js';
import { Panel } from './panel.js';

const TOP_SERIES = 6;

function TrendsBody(props: {
  readonly data: TrendsResponse;
  readonly metric: 'events' | 'installs';
  readonly interval: string;
}) {
  const { data, metric } = props;
  const ranked = useMemo(
    () =>
      data.series
        .map((s) => ({ s, total: s.events.reduce((a, b) => a + b, 0) }))
        .sort((a, b) => b.total - a.total),
    [data],
  );
  const series = useMemo(
    () =>
      ranked
        .slice(0, TOP_SERIES)
        .map(({ s }) => ({ label: s.event, values: metric === 'events' ? s.events : s.installs })),
    [ranked, metric],
  );
  return (
    <>
      <TimeChart
        title={`${metric === 'events' ? 'Events' : 'Distinct installs'} per ${props.interval}, top ${series.length} events`}
        buckets={data.buckets}
        series={series}
        interval={props.interval}
        format={fmtInt}
      />
      <div class="table-scroll">
        <table class="compact">
          <caption class="visually-hidden">Events in the range</caption>
          <thead>
            <tr>
              <th scope="col">Event</th>
              <th scope="col" class="num">
                Events
              </th>
            </tr>
          </thead>
          <tbody>
            {ranked.map(({ s, total }) => (
              <tr key={s.event} data-event={s.event}>
                <th scope="row">{s.event}</th>
                <td class="num">{fmtInt(total)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
    </>
  );
}

export function Trends(props: { readonly result: ViewResult<TrendsResponse>; readonly interval: string }) {
  const [metric, setMetric] = useState<'events' | 'installs'>('events');
  return (
    <Panel
      id="trends"
      title="Event trends"
      result={props.result}
      actions={
        <fieldset class="segmented">
          <legend class="visually-hidden">Measure</legend>
          {(['events', 'installs'] as const).map((m) => (
            <button
              key={m}
              type="button"
              aria-pressed={metric === m ? 'true' : 'false'}
              onClick={() => setMetric(m)}
            >
              {m === 'events' ? 'Events' : 'Installs'}
            </button>
          ))}
        </fieldset>
      }
    >
      {(data) => <TrendsBody data={data} metric={metric} interval={props.interval} />}
    </Panel>
  );
}

export function ActiveInstalls(props: {
  readonly result: ViewResult<InstallsResponse>;
  readonly interval: string;
}) {
  return (
    <Panel
      id="installs"
      title="Active installs"
      description="Distinct installs seen in the 1, 7 and 30 days ending at each point."
      result={props.result}
    >
      {(data) => <ActiveInstallsBody data={data} interval={props.interval} />}
    </Panel>
  );
}

function ActiveInstallsBody(props: { readonly data: InstallsResponse; readonly interval: string }) {
  const { data } = props;
  const series = useMemo(
    () => [
      { label: 'Daily', values: data.daily },
      { label: 'Weekly', values: data.weekly },
      { label: 'Monthly', values: data.monthly },
    ],
    [data],
  );
  return (
    <TimeChart
      title="Active installs"
      buckets={data.buckets}
      series={series}
      interval={props.interval}
      format={fmtInt}
    />
  );
}
