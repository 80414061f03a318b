import type { BreakdownResponse } from '../api.js';
import { DIMENSION_LABELS, fmtInt, fmtPct } from '../format.js';
import { DIMENSIONS, type Dimension } from '../url-state.js';
import type { ViewResult } from '../use-view.js';
import { Bar } from './chart.js';
import { Panel } from './panel.js';

/** Events and installs by one context dimension; the dimension is a tab kept in the URL. */
export function Breakdown(props: {
  readonly result: ViewResult<BreakdownResponse>;
  readonly dimension: Dimension;
  readonly onDimension: (d: Dimension) => void;
}) {
  const onKey = (event: KeyboardEvent): void => {
    const i = DIMENSIONS.indexOf(props.dimension);
    const next =
      event.key === 'ArrowRight'
        ? DIMENSIONS[(i + 1) % DIMENSIONS.length]
        : event.key === 'ArrowLeft'
          ? DIMENSIONS[(i - 1 + DIMENSIONS.length) % DIMENSIONS.length]
          : undefined;
    if (next) {
      event.preventDefault();
      props.onDimension(next);
      requestAnimationFrame(() => document.getElementById(`tab-${next}`)?.focus());
    }
  };
  return (
    <Panel
      id="breakdown"
      title="Breakdown"
      description="Rows with fewer installs than the k threshold are folded into “other”."
      result={props.result}
    >
      {(data) => (
        <>
          <div class="tabs" role="tablist" aria-label="Dimension" onKeyDown={onKey}>
            {DIMENSIONS.map((d) => (
              <button
                key={d}
                id={`tab-${d}`}
                type="button"
                role="tab"
                aria-selected={props.dimension === d ? 'true' : 'false'}
                aria-controls="breakdown-table"
                tabIndex={props.dimension === d ? 0 : -1}
                onClick={() => props.onDimension(d)}
              >
                {DIMENSION_LABELS[d]}
              </button>
            ))}
          </div>
          <div
            class="table-scroll"
            id="breakdown-table"
            role="tabpanel"
            aria-labelledby={`tab-${props.dimension}`}
          >
            <table class="compact" data-dimension={data.dimension}>
              <thead>
                <tr>
                  <th scope="col">{DIMENSION_LABELS[data.dimension] ?? data.dimension}</th>
                  <th scope="col" class="num">
                    Events
                  </th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                  <th scope="col">Share of events</th>
                </tr>
              </thead>
              <tbody>
                {data.rows.map((r) => (
                  <tr key={r.value} data-value={r.value}>
                    <th scope="row">{r.value === '' ? '(none)' : r.value}</th>
                    <td class="num">{fmtInt(r.events)}</td>
                    <td class="num">{fmtInt(r.installs)}</td>
                    <td>
                      <Bar share={r.share} label={fmtPct(r.share)} />
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
            {data.rows.length === 0 ? <p class="empty">No data in this range.</p> : null}
          </div>
        </>
      )}
    </Panel>
  );
}
