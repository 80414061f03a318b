import type { BreakdownResponse } from '../api.js';
import { DIMENSION_LABELS, fmtInt, fmtPct } from '../format.js';
import type { TraitChoice } from '../trait-choices.js';
import {
  type BreakdownDimension,
  DIMENSIONS,
  type Dimension,
  isTraitDimension,
  traitOf,
} from '../url-state.js';
import type { ViewResult } from '../use-view.js';
import { Bar } from './chart.js';
import { Panel } from './panel.js';

/** The tabs: the context dimensions, then "By trait" when the catalog has a trait to group by. */
type Tab = Dimension | 'trait';

/** The value of a trait breakdown's row for events without the trait (docs/api.md). */
const NONE = '(none)';

/**
 * Events and installs by one context dimension, or by one enum/boolean/enumList trait of one event; the
 * choice is a tab (and, for a trait, an event and a trait picker) kept in the URL.
 */
export function Breakdown(props: {
  readonly result: ViewResult<BreakdownResponse>;
  readonly dimension: BreakdownDimension;
  /** The event of a trait breakdown. */
  readonly event: string | null;
  readonly traitChoices: readonly TraitChoice[];
  readonly onDimension: (d: Dimension) => void;
  readonly onTrait: (event: string, trait: string) => void;
}) {
  const trait = traitOf(props.dimension);
  const current: Tab = trait === null ? (props.dimension as Dimension) : 'trait';
  const tabs: readonly Tab[] = props.traitChoices.length > 0 ? [...DIMENSIONS, 'trait'] : DIMENSIONS;
  const choice = props.traitChoices.find((c) => c.event === props.event);

  const select = (tab: Tab): void => {
    if (tab !== 'trait') props.onDimension(tab);
    else if (current !== 'trait') {
      const first = props.traitChoices[0];
      if (first?.traits[0]) props.onTrait(first.event, first.traits[0]);
    }
  };
  const selectEvent = (event: string): void => {
    const next = props.traitChoices.find((c) => c.event === event);
    if (!next) return;
    // Keep the trait when the new event has it too.
    const name = trait !== null && next.traits.includes(trait) ? trait : next.traits[0];
    if (name) props.onTrait(event, name);
  };
  const onKey = (event: KeyboardEvent): void => {
    if ((event.target as HTMLElement | null)?.getAttribute('role') !== 'tab') return;
    const i = tabs.indexOf(current);
    const next =
      event.key === 'ArrowRight'
        ? tabs[(i + 1) % tabs.length]
        : event.key === 'ArrowLeft'
          ? tabs[(i - 1 + tabs.length) % tabs.length]
          : undefined;
    if (next) {
      event.preventDefault();
      select(next);
      requestAnimationFrame(() => document.getElementById(`tab-${next}`)?.focus());
    }
  };
  const heading = (dimension: string): string =>
    traitOf(dimension) ?? DIMENSION_LABELS[dimension] ?? dimension;
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
            {tabs.map((d) => (
              <button
                key={d}
                id={`tab-${d}`}
                type="button"
                role="tab"
                aria-selected={current === d ? 'true' : 'false'}
                aria-controls="breakdown-table"
                tabIndex={current === d ? 0 : -1}
                onClick={() => select(d)}
              >
                {d === 'trait' ? 'By trait' : DIMENSION_LABELS[d]}
              </button>
            ))}
          </div>
          {current === 'trait' ? (
            <div class="breakdown-trait">
              <div class="field inline">
                <label for="breakdown-event">Event</label>
                <select
                  id="breakdown-event"
                  value={props.event ?? ''}
                  onChange={(e) => selectEvent((e.currentTarget as HTMLSelectElement).value)}
                >
                  {props.traitChoices.map((c) => (
                    <option key={c.event} value={c.event}>
                      {c.event}
                    </option>
                  ))}
                </select>
              </div>
              <div class="field inline">
                <label for="breakdown-trait">Trait</label>
                <select
                  id="breakdown-trait"
                  value={trait ?? ''}
                  onChange={(e) => {
                    if (props.event) props.onTrait(props.event, (e.currentTarget as HTMLSelectElement).value);
                  }}
                >
                  {(choice?.traits ?? []).map((t) => (
                    <option key={t} value={t}>
                      {t}
                    </option>
                  ))}
                </select>
              </div>
            </div>
          ) : null}
          <div class="table-scroll" id="breakdown-table" role="tabpanel" aria-labelledby={`tab-${current}`}>
            <table class="compact" data-dimension={data.dimension}>
              {isTraitDimension(data.dimension) && props.event ? (
                <caption class="muted">
                  <code>{props.event}</code> events by their <code>{heading(data.dimension)}</code> trait
                </caption>
              ) : null}
              <thead>
                <tr>
                  <th scope="col">{heading(data.dimension)}</th>
                  <th scope="col" class="num">
                    Events
                  </th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                  <th scope="col">Share of installs</th>
                </tr>
              </thead>
              <tbody>
                {data.rows.map((r) => (
                  <tr key={r.value} data-value={r.value} {...(r.other ? { 'data-other': '' } : {})}>
                    <th scope="row">
                      {r.value === '' ? NONE : r.value}
                      {r.other ? (
                        <span class="row-note"> · values under k installs</span>
                      ) : r.value === NONE && isTraitDimension(data.dimension) ? (
                        <span class="row-note"> · no value</span>
                      ) : null}
                    </th>
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
