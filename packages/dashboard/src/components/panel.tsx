import type { ComponentChildren } from 'preact';
import type { ViewResult } from '../use-view.js';

export interface PanelProps<T> {
  /** Anchor and test hook: `panel-<id>`. */
  readonly id: string;
  readonly title: string;
  readonly description?: string;
  readonly wide?: boolean;
  readonly result: ViewResult<T>;
  readonly actions?: ComponentChildren;
  readonly children: (data: T) => ComponentChildren;
}

/** A dashboard card: a titled region that shows its view's data, a loading note or the API's error. */
export function Panel<T>(props: PanelProps<T>) {
  const { result } = props;
  const headingId = `panel-${props.id}-title`;
  const data =
    result.status === 'ready' ? result.data : result.status === 'loading' ? result.data : undefined;
  return (
    <section
      class={`panel${props.wide ? ' wide' : ''}`}
      id={`panel-${props.id}`}
      aria-labelledby={headingId}
      aria-busy={result.status === 'loading' ? 'true' : 'false'}
      data-status={result.status}
    >
      <header class="panel-head">
        <h2 id={headingId}>{props.title}</h2>
        {props.actions}
      </header>
      {props.description ? <p class="panel-description">{props.description}</p> : null}
      {result.status === 'error' ? (
        <p class="error-note" role="alert">
          {result.error.message}
        </p>
      ) : data === undefined ? (
        <p class="loading">Loading…</p>
      ) : (
        props.children(data)
      )}
    </section>
  );
}
