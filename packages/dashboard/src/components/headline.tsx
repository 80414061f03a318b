import type { OverviewOutcome, OverviewResponse } from '../api.js';
import { fmtChange, fmtInt, fmtPct, fmtPointChange } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { Panel } from './panel.js';

function Figure(props: {
  readonly name: string;
  readonly label: string;
  readonly value: string;
  readonly note?: string;
}) {
  return (
    <div class="figure" data-figure={props.name}>
      <dt>{props.label}</dt>
      <dd>
        <span class="figure-value">{props.value}</span>
        {props.note ? <span class="figure-note">{props.note}</span> : null}
      </dd>
    </div>
  );
}

/**
 * What a rate is a share of: successes ÷ (successes + failures). Results of an `other` kind (an interrupted
 * login) are attempts but not in the rate, so when there are any both counts are shown.
 */
function attempts(x: OverviewOutcome): string {
  return x.completed === x.total
    ? `of ${fmtInt(x.total)} attempts`
    : `of ${fmtInt(x.completed)} completed · ${fmtInt(x.total)} attempts`;
}

/** Headline figures of the range, compared with the range of equal length before it. */
export function Headline(props: { readonly result: ViewResult<OverviewResponse> }) {
  return (
    <Panel id="overview" title="Overview" wide result={props.result}>
      {(o) => (
        <>
          <dl class="figures">
            <Figure
              name="events"
              label="Events"
              value={fmtInt(o.events)}
              note={`${fmtChange(o.events, o.previous.events)} vs previous`}
            />
            <Figure
              name="installs"
              label="Installs"
              value={fmtInt(o.installs)}
              note={`${fmtChange(o.installs, o.previous.installs)} vs previous`}
            />
            <Figure name="daily" label="Daily active" value={fmtInt(o.activeInstalls.daily)} />
            <Figure name="weekly" label="Weekly active" value={fmtInt(o.activeInstalls.weekly)} />
            <Figure name="monthly" label="Monthly active" value={fmtInt(o.activeInstalls.monthly)} />
            <Figure name="latest-version" label="Latest version" value={o.latestVersion ?? '—'} />
          </dl>
          {o.outcomes.length > 0 ? (
            <dl class="figures outcomes-figures" aria-label="Outcome rates">
              {o.outcomes.map((x) => (
                <Figure
                  key={x.outcome}
                  name={`outcome-${x.outcome}`}
                  label={`${x.title} success`}
                  value={fmtPct(x.rate)}
                  note={`${attempts(x)}${x.previousRate !== null && x.rate !== null ? ` · ${fmtPointChange(x.rate, x.previousRate)}` : ''}`}
                />
              ))}
            </dl>
          ) : null}
        </>
      )}
    </Panel>
  );
}
