import { useMemo } from 'preact/hooks';
import type { HealthResponse } from '../api.js';
import { fmtInt, fmtPct, fmtSeconds } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { TimeChart } from './chart.js';
import { Panel } from './panel.js';

/** Is the data trustworthy: ingest lag, rejects, duplicates, clock problems, CI and test shares. */
export function Health(props: { readonly result: ViewResult<HealthResponse>; readonly interval: string }) {
  return (
    <Panel id="health" title="Data health" wide result={props.result}>
      {(h) => <HealthBody health={h} interval={props.interval} />}
    </Panel>
  );
}

function HealthBody(props: { readonly health: HealthResponse; readonly interval: string }) {
  const h = props.health;
  const series = useMemo(
    () => [
      { label: 'Accepted', values: h.series.accepted },
      { label: 'Duplicate', values: h.series.duplicate },
      { label: 'Rejected', values: h.series.rejected },
    ],
    [h],
  );
  const figures: [string, string, string][] = [
    ['lag-p50', 'Ingest lag p50', fmtSeconds(h.ingestLagSeconds.p50)],
    ['lag-p90', 'Ingest lag p90', fmtSeconds(h.ingestLagSeconds.p90)],
    ['lag-p99', 'Ingest lag p99', fmtSeconds(h.ingestLagSeconds.p99)],
    ['duplicates', 'Duplicates dropped', fmtInt(h.duplicates)],
    ['clamped', 'Clamped timestamps', fmtInt(h.clamped)],
    ['skewed', 'Skew-corrected', fmtInt(h.skewed)],
    ['ci-share', 'CI share', fmtPct(h.ciShare)],
    ['test-share', 'Test share', fmtPct(h.testShare)],
    ['quarantine', 'In quarantine', fmtInt(h.quarantine)],
    ['dropped', 'Dropped by clients', fmtInt(h.droppedByClients)],
  ];
  return (
    <>
      <dl class="figures">
        {figures.map(([name, label, value]) => (
          <div class="figure" data-figure={name} key={name}>
            <dt>{label}</dt>
            <dd>
              <span class="figure-value">{value}</span>
            </dd>
          </div>
        ))}
      </dl>
      <div class="two-col">
        <TimeChart
          title="Ingest results"
          buckets={h.series.buckets}
          series={series}
          interval={props.interval}
          format={fmtInt}
          height={160}
        />
        <table class="compact">
          <caption>Rejects by reason</caption>
          <thead>
            <tr>
              <th scope="col">Reason</th>
              <th scope="col" class="num">
                Count
              </th>
            </tr>
          </thead>
          <tbody>
            {h.rejects.length === 0 ? (
              <tr>
                <td colSpan={2} class="muted">
                  None
                </td>
              </tr>
            ) : (
              h.rejects.map((r) => (
                <tr key={r.reason} data-reason={r.reason}>
                  <th scope="row">{r.reason}</th>
                  <td class="num">{fmtInt(r.count)}</td>
                </tr>
              ))
            )}
          </tbody>
        </table>
      </div>
    </>
  );
}
