import { useEffect, useRef } from 'preact/hooks';
import type { ErrorDetailResponse, ErrorsResponse } from '../api.js';
import { fmtDateTime, fmtInt, fmtVersion, fmtVersionSpan } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { Bar } from './chart.js';
import { Panel } from './panel.js';

const BLOCKS = '▁▂▃▄▅▆▇█';

/** A one-line text sparkline: readable as text, labelled with its numbers. */
function Sparkline(props: { readonly values: readonly number[] }) {
  const max = Math.max(1, ...props.values);
  const text = props.values.map((v) => BLOCKS[Math.min(7, Math.floor((v / max) * 7.999))] ?? '▁').join('');
  return (
    <span class="sparkline" role="img" aria-label={`Trend: ${props.values.join(', ')}`}>
      {text}
    </span>
  );
}

/** Top errors grouped by fingerprint; each opens a drill-down with scrubbed samples. */
export function Errors(props: {
  readonly result: ViewResult<ErrorsResponse>;
  readonly open: string | null;
  readonly onOpen: (fingerprint: string) => void;
}) {
  return (
    <Panel
      id="errors"
      title="Top errors"
      description="Grouped by fingerprint; the text is the collector's scrubbed sample."
      wide
      result={props.result}
    >
      {(data) =>
        data.errors.length === 0 ? (
          <p class="empty">No errors in this range.</p>
        ) : (
          <div class="table-scroll">
            <table class="errors-table">
              <caption class="visually-hidden">Top errors</caption>
              <thead>
                <tr>
                  <th scope="col">Error</th>
                  <th scope="col">Event</th>
                  <th scope="col" class="num">
                    Count
                  </th>
                  <th scope="col" class="num">
                    Installs
                  </th>
                  <th scope="col">Versions</th>
                  <th scope="col">Trend</th>
                  <th scope="col">
                    <span class="visually-hidden">Details</span>
                  </th>
                </tr>
              </thead>
              <tbody>
                {data.errors.map((e) => (
                  <tr
                    key={e.fingerprint}
                    data-fingerprint={e.fingerprint}
                    class={props.open === e.fingerprint ? 'selected' : ''}
                  >
                    <td class="error-text">
                      {e.newInVersion ? (
                        <span
                          class="badge"
                          title={`First seen in ${e.newInVersion}, absent from earlier versions`}
                        >
                          New in {e.newInVersion}
                        </span>
                      ) : null}
                      <span class="sample">{e.sample}</span>
                    </td>
                    <td>{e.event}</td>
                    <td class="num">{fmtInt(e.count)}</td>
                    <td class="num">{fmtInt(e.installs)}</td>
                    <td class="nowrap">{fmtVersionSpan(e.firstVersion, e.lastVersion)}</td>
                    <td>
                      <Sparkline values={e.trend} />
                    </td>
                    <td>
                      <button
                        type="button"
                        class="link-button"
                        aria-label={`Details of error ${e.fingerprint}`}
                        aria-expanded={props.open === e.fingerprint ? 'true' : 'false'}
                        onClick={() => props.onOpen(e.fingerprint)}
                      >
                        Details
                      </button>
                    </td>
                  </tr>
                ))}
              </tbody>
            </table>
          </div>
        )
      }
    </Panel>
  );
}

export function ErrorDetail(props: {
  readonly fingerprint: string;
  readonly result: ViewResult<ErrorDetailResponse>;
  readonly onClose: () => void;
}) {
  const heading = useRef<HTMLHeadingElement>(null);
  useEffect(() => heading.current?.focus(), [props.fingerprint]);
  const result = props.result;
  return (
    <section
      class="panel wide error-detail"
      id="panel-error-detail"
      aria-labelledby="error-detail-title"
      data-status={result.status}
    >
      <header class="panel-head">
        <h2 id="error-detail-title" tabIndex={-1} ref={heading}>
          Error {props.fingerprint}
        </h2>
        <button type="button" onClick={props.onClose}>
          Close
        </button>
      </header>
      {result.status === 'error' ? (
        <p class="error-note" role="alert">
          {result.error.message}
        </p>
      ) : result.status === 'loading' && !result.data ? (
        <p class="loading">Loading…</p>
      ) : (
        <ErrorDetailBody
          detail={(result.status === 'ready' ? result.data : result.data) as ErrorDetailResponse}
        />
      )}
    </section>
  );
}

function ErrorDetailBody(props: { readonly detail: ErrorDetailResponse }) {
  const d = props.detail;
  const maxVersion = Math.max(1, ...d.versions.map((v) => v.count));
  const maxOs = Math.max(1, ...d.os.map((v) => v.count));
  return (
    <>
      <dl class="figures">
        <div class="figure" data-figure="error-event">
          <dt>Event</dt>
          <dd>
            <span class="figure-value small">{d.event}</span>
          </dd>
        </div>
        <div class="figure" data-figure="error-count">
          <dt>Occurrences</dt>
          <dd>
            <span class="figure-value">{fmtInt(d.count)}</span>
          </dd>
        </div>
        <div class="figure" data-figure="error-installs">
          <dt>Installs</dt>
          <dd>
            <span class="figure-value">{fmtInt(d.installs)}</span>
          </dd>
        </div>
      </dl>
      <div class="two-col">
        <table class="compact">
          <caption>By version</caption>
          <tbody>
            {d.versions.map((v) => (
              <tr key={v.version}>
                <th scope="row">{fmtVersion(v.version)}</th>
                <td>
                  <Bar share={v.count / maxVersion} label={fmtInt(v.count)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
        <table class="compact">
          <caption>By OS</caption>
          <tbody>
            {d.os.map((v) => (
              <tr key={v.value}>
                <th scope="row">{v.value}</th>
                <td>
                  <Bar share={v.count / maxOs} label={fmtInt(v.count)} />
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <h3>Samples (scrubbed)</h3>
      <ol class="samples">
        {d.samples.map((s, i) => (
          <li key={`${s.timestamp}-${i}`}>
            <div class="sample-meta">
              {fmtDateTime(s.timestamp)} · {fmtVersion(s.appVersion)} · {s.osName}
            </div>
            <pre class="sample-text">{s.text}</pre>
          </li>
        ))}
      </ol>
      {d.samples.length === 0 ? <p class="empty">No samples.</p> : null}
    </>
  );
}
