import { useMemo } from 'preact/hooks';
import type { CatalogJson, OutcomeSeries, OutcomesResponse } from '../api.js';
import { fmtInt, fmtPct } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { Bar, TimeChart } from './chart.js';
import { Panel } from './panel.js';

const ratePct = (v: number | null): string => fmtPct(v, 0);

function OutcomeCard(props: {
  readonly outcome: OutcomeSeries;
  readonly catalog: CatalogJson;
  readonly interval: string;
}) {
  const { outcome } = props;
  const spec = props.catalog.outcomes?.[outcome.outcome];
  const series = useMemo(() => [{ label: 'Success rate', values: outcome.rate }], [outcome]);
  // The API counts each result over the range and names its kind: nothing to add up again here.
  const totals = Object.entries(outcome.totals).map(([result, total]) => ({
    result,
    label: outcome.resultKinds[result]?.label ?? result,
    kind: outcome.resultKinds[result]?.kind ?? '',
    total,
  }));
  const all = outcome.total;
  const completed = outcome.success + outcome.failure;
  const leftOut = totals.filter((t) => t.kind !== 'success' && t.kind !== 'failure' && t.total > 0);
  return (
    <article class="outcome" data-outcome={outcome.outcome} aria-labelledby={`outcome-${outcome.outcome}`}>
      <h3 id={`outcome-${outcome.outcome}`}>{outcome.title}</h3>
      {spec?.description ? <p class="panel-description">{spec.description}</p> : null}
      <p class="outcome-rate" data-rate-summary>
        Success rate <strong>{fmtPct(outcome.overallRate)}</strong>: {fmtInt(outcome.success)} of{' '}
        {fmtInt(completed)} completed
        {leftOut.length > 0
          ? ` (${leftOut.map((t) => `${fmtInt(t.total)} ${t.label.toLowerCase()}`).join(', ')}: not in the rate)`
          : ''}
      </p>
      <TimeChart
        title={`${outcome.title}: success rate per ${props.interval}`}
        buckets={outcome.buckets}
        series={series}
        interval={props.interval}
        format={ratePct}
        rate
        height={160}
      />
      <div class="table-scroll">
        <table class="compact outcome-table">
          <caption class="visually-hidden">{outcome.title}: results</caption>
          <thead>
            <tr>
              <th scope="col">Result</th>
              <th scope="col" class="num">
                Count
              </th>
              <th scope="col">Share of attempts</th>
            </tr>
          </thead>
          <tbody>
            {totals.map((t) => (
              <tr key={t.result} data-result={t.result}>
                <th scope="row" class="label" title={t.label}>
                  <span class={`kind kind-${t.kind}`}>{t.label}</span>
                </th>
                <td class="num">{fmtInt(t.total)}</td>
                <td>
                  <Bar share={all ? t.total / all : 0} label={fmtPct(all ? t.total / all : null)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      {outcome.breakdown && outcome.breakdown.length > 0 ? (
        <details>
          <summary>Success rate by OS</summary>
          <div class="table-scroll">
            <table class="compact outcome-table">
              <caption class="visually-hidden">{outcome.title}: success rate by OS</caption>
              <thead>
                <tr>
                  <th scope="col">OS</th>
                  <th scope="col" class="num" title="Successes and failures: what the rate is a share of">
                    Completed
                  </th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                  <th scope="col">Success rate</th>
                </tr>
              </thead>
              <tbody>
                {outcome.breakdown.map((row) => (
                  <tr key={row.value} data-value={row.value}>
                    <th scope="row" class="label" title={row.value}>
                      {row.value}
                    </th>
                    <td class="num">{fmtInt(row.success + row.failure)}</td>
                    <td class="num">{fmtInt(row.installs)}</td>
                    <td>
                      <Bar share={row.rate ?? 0} label={fmtPct(row.rate)} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        </details>
      ) : null}
    </article>
  );
}

/** One card per outcome the catalog declares: rate over time, results, and rate by OS. */
export function Outcomes(props: {
  readonly result: ViewResult<OutcomesResponse>;
  readonly catalog: CatalogJson;
  readonly interval: string;
}) {
  return (
    <Panel id="outcomes" title="Outcomes" wide result={props.result}>
      {(data) =>
        data.outcomes.length === 0 ? (
          <p class="empty">This app's catalog declares no outcomes.</p>
        ) : (
          <div class="outcome-grid">
            {data.outcomes.map((o) => (
              <OutcomeCard key={o.outcome} outcome={o} catalog={props.catalog} interval={props.interval} />
            ))}
          </div>
        )
      }
    </Panel>
  );
}
