import { useMemo } from 'preact/hooks';
import { adoptionSeries } from '../adoption-series.js';
import type { AdoptionResponse, RetentionResponse } from '../api.js';
import { fmtDate, fmtInt, fmtPct } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { TimeChart } from './chart.js';
import { Panel } from './panel.js';

const sharePct = (v: number | null): string => fmtPct(v, 0);

/** Share of weekly active installs per version over time. */
export function Adoption(props: { readonly result: ViewResult<AdoptionResponse> }) {
  return (
    <Panel
      id="adoption"
      title="Version adoption"
      description="Share of weekly active installs on each version; versions beyond the top 8 (and those under k installs) are shown as other."
      result={props.result}
    >
      {(data) => <AdoptionBody data={data} />}
    </Panel>
  );
}

function AdoptionBody(props: { readonly data: AdoptionResponse }) {
  const { data } = props;
  // The top versions by latest share, and every other version (the API's k-folded `other` too) as `other`.
  const series = useMemo(() => adoptionSeries(data), [data]);
  return (
    <TimeChart
      title="Version adoption (share of weekly active installs)"
      buckets={data.buckets}
      series={series}
      interval="week"
      format={sharePct}
      rate
    />
  );
}

/** Cohorts by week first seen × weeks after: the share still active. */
export function Retention(props: { readonly result: ViewResult<RetentionResponse> }) {
  return (
    <Panel
      id="retention"
      title="Retention"
      description="Installs by the week they were first seen, and the share active in each later week."
      wide
      result={props.result}
    >
      {(data) => {
        const weeks = Math.max(0, ...data.cohorts.map((c) => c.rate.length));
        if (data.cohorts.length === 0) return <p class="empty">No cohorts in this range.</p>;
        return (
          <div class="table-scroll">
            <table class="retention">
              <caption class="visually-hidden">Retention by weekly cohort</caption>
              <thead>
                <tr>
                  <th scope="col">Cohort (week)</th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                  {Array.from({ length: weeks }, (_, w) => (
                    <th scope="col" class="num" key={w}>
                      Week {w}
                    </th>
                  ))}
                </tr>
              </thead>
              <tbody>
                {data.cohorts.map((c) => (
                  <tr key={c.week} data-cohort={c.week}>
                    <th scope="row">{fmtDate(c.week)}</th>
                    <td class="num">{fmtInt(c.installs)}</td>
                    {Array.from({ length: weeks }, (_, w) => {
                      const rate = c.rate[w];
                      return rate === undefined ? (
                        <td key={w} class="cell-empty" />
                      ) : (
                        <td
                          key={w}
                          class="num heat"
                          style={{ '--heat': String(rate) }}
                          title={`${fmtInt(c.retained[w] ?? 0)} installs`}
                        >
                          {fmtPct(rate, 0)}
                        </td>
                      );
                    })}
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        );
      }}
    </Panel>
  );
}
