import { useState } from 'preact/hooks';
import type { BreakdownResponse } from '../api.js';
import { ENV_CLASSES, INTERVALS, type Navigate, RANGES, type ViewState } from '../url-state.js';

export interface FilterOptions {
  readonly versions: BreakdownResponse | undefined;
  readonly os: BreakdownResponse | undefined;
}

const RANGE_LABELS: Readonly<Record<string, string>> = {
  '7d': 'Last 7 days',
  '30d': 'Last 30 days',
  '90d': 'Last 90 days',
  '180d': 'Last 180 days',
  '365d': 'Last year',
  custom: 'Custom range',
};

/** A compact multi-select: a disclosure button with a list of checkboxes. */
function MultiSelect(props: {
  readonly id: string;
  readonly label: string;
  readonly allLabel: string;
  readonly options: readonly string[];
  readonly selected: readonly string[];
  readonly onChange: (selected: string[]) => void;
}) {
  const [open, setOpen] = useState(false);
  const summary =
    props.selected.length === 0
      ? props.allLabel
      : props.selected.length <= 2
        ? props.selected.join(', ')
        : `${props.selected.length} selected`;
  const options = [...new Set([...props.selected, ...props.options])];
  const toggle = (value: string, on: boolean): void =>
    props.onChange(on ? [...props.selected, value] : props.selected.filter((v) => v !== value));
  return (
    <div class="multi">
      <span class="filter-label" id={`${props.id}-label`}>
        {props.label}
      </span>
      <button
        type="button"
        class="multi-button"
        id={`${props.id}-button`}
        aria-expanded={open ? 'true' : 'false'}
        aria-controls={`${props.id}-list`}
        aria-labelledby={`${props.id}-label ${props.id}-value`}
        onClick={() => setOpen(!open)}
      >
        <span id={`${props.id}-value`}>{summary}</span>
      </button>
      {open ? (
        <fieldset
          class="multi-list"
          id={`${props.id}-list`}
          onKeyDown={(e) => {
            if (e.key !== 'Escape') return;
            e.preventDefault();
            setOpen(false);
            document.getElementById(`${props.id}-button`)?.focus();
          }}
        >
          <legend class="visually-hidden">{props.label}</legend>
          {options.length === 0 ? <p class="muted">No values in this range.</p> : null}
          {options.map((value) => (
            <label key={value} class="check">
              <input
                type="checkbox"
                checked={props.selected.includes(value)}
                onChange={(e) => toggle(value, (e.currentTarget as HTMLInputElement).checked)}
              />
              <span>{value}</span>
            </label>
          ))}
          <div class="multi-actions">
            <button type="button" onClick={() => props.onChange([])} disabled={props.selected.length === 0}>
              Clear
            </button>
            <button
              type="button"
              onClick={() => {
                setOpen(false);
                document.getElementById(`${props.id}-button`)?.focus();
              }}
            >
              Done
            </button>
          </div>
        </fieldset>
      ) : null}
    </div>
  );
}

export function Filters(props: {
  readonly state: ViewState;
  readonly navigate: Navigate;
  readonly options: FilterOptions;
}) {
  const { state, navigate } = props;
  const rangeValue = state.from ? 'custom' : (state.range ?? '30d');
  const today = new Date().toISOString().slice(0, 10);
  const valuesOf = (b: BreakdownResponse | undefined): string[] =>
    (b?.rows ?? []).map((r) => r.value).filter((v) => v !== 'other');
  return (
    <form class="filters" aria-label="Filters" onSubmit={(e) => e.preventDefault()}>
      <div class="field">
        <label for="f-range" class="filter-label">
          Date range
        </label>
        <select
          id="f-range"
          value={rangeValue}
          onChange={(e) => {
            const value = (e.currentTarget as HTMLSelectElement).value;
            if (value === 'custom') {
              const to = today;
              const from = new Date(Date.now() - 29 * 86_400_000).toISOString().slice(0, 10);
              navigate({ range: null, from, to, error: null });
            } else navigate({ range: value as ViewState['range'], from: null, to: null, error: null });
          }}
        >
          {[...RANGES, 'custom'].map((r) => (
            <option key={r} value={r}>
              {RANGE_LABELS[r]}
            </option>
          ))}
        </select>
      </div>
      {state.from ? (
        <>
          <div class="field">
            <label for="f-from" class="filter-label">
              From
            </label>
            <input
              id="f-from"
              type="date"
              value={state.from}
              max={state.to ?? today}
              onChange={(e) => {
                const value = (e.currentTarget as HTMLInputElement).value;
                if (value) navigate({ from: value, error: null });
              }}
            />
          </div>
          <div class="field">
            <label for="f-to" class="filter-label">
              To (inclusive)
            </label>
            <input
              id="f-to"
              type="date"
              value={state.to ?? today}
              min={state.from}
              onChange={(e) => {
                const value = (e.currentTarget as HTMLInputElement).value;
                if (value) navigate({ to: value, error: null });
              }}
            />
          </div>
        </>
      ) : null}
      <div class="field">
        <label for="f-interval" class="filter-label">
          Interval
        </label>
        <select
          id="f-interval"
          value={state.interval}
          onChange={(e) =>
            navigate({ interval: (e.currentTarget as HTMLSelectElement).value as ViewState['interval'] })
          }
        >
          {INTERVALS.map((i) => (
            <option key={i} value={i}>
              {i[0]?.toUpperCase() + i.slice(1)}
            </option>
          ))}
        </select>
      </div>
      <MultiSelect
        id="f-version"
        label="Version"
        allLabel="All versions"
        options={valuesOf(props.options.versions)}
        selected={state.versions}
        onChange={(versions) => navigate({ versions, error: null })}
      />
      <MultiSelect
        id="f-os"
        label="OS"
        allLabel="All OSes"
        options={valuesOf(props.options.os)}
        selected={state.os}
        onChange={(os) => navigate({ os, error: null })}
      />
      <MultiSelect
        id="f-env"
        label="Environment"
        allLabel={state.includeCi ? 'All environments' : 'All but CI and tests'}
        options={[...ENV_CLASSES]}
        selected={state.env}
        onChange={(env) => navigate({ env, error: null })}
      />
      <div class="field switch">
        <input
          id="f-ci"
          type="checkbox"
          role="switch"
          aria-checked={state.includeCi ? 'true' : 'false'}
          checked={state.includeCi}
          onChange={(e) =>
            navigate({ includeCi: (e.currentTarget as HTMLInputElement).checked, error: null })
          }
        />
        <label for="f-ci">Include CI and test runs</label>
      </div>
    </form>
  );
}
