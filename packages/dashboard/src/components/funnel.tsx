import type { FunnelResponse } from '../api.js';
import { fmtInt, fmtPct, fmtSeconds } from '../format.js';
import type { ViewResult } from '../use-view.js';
import { Bar } from './chart.js';
import { Panel } from './panel.js';

/** A catalog funnel: sessions reaching each step, conversion, drop-off and time from the previous step. */
export function Funnel(props: {
  readonly id: string;
  readonly title: string;
  readonly description?: string;
  readonly result: ViewResult<FunnelResponse>;
}) {
  return (
    <Panel
      id={`funnel-${props.id}`}
      wide
      title={`Funnel: ${props.title}`}
      {...(props.description ? { description: props.description } : {})}
      result={props.result}
    >
      {(f) => (
        <div class="table-scroll">
          <table class="funnel" data-funnel={props.id}>
            <caption class="visually-hidden">
              {props.title} funnel, within {fmtSeconds(f.windowSeconds)} of the first step
            </caption>
            <thead>
              <tr>
                <th scope="col">Step</th>
                <th scope="col" class="num">
                  Sessions
                </th>
                <th scope="col">Conversion</th>
                <th scope="col" class="num">
                  From previous
                </th>
                <th scope="col" class="num">
                  Drop-off
                </th>
                <th scope="col" class="num">
                  Median time
                </th>
                <th scope="col" class="num">
                  p90 time
                </th>
              </tr>
            </thead>
            <tbody>
              {f.steps.map((s, i) => (
                <tr key={s.event} data-step={s.event}>
                  <th scope="row">
                    {i + 1}. {s.event}
                  </th>
                  <td class="num">{fmtInt(s.sessions)}</td>
                  <td>
                    <Bar share={s.conversion} label={fmtPct(s.conversion)} />
                  </td>
                  <td class="num">{i === 0 ? '—' : fmtPct(s.fromPrevious)}</td>
                  <td class="num">{i === 0 ? '—' : fmtInt(s.dropOff)}</td>
                  <td class="num">{i === 0 ? '—' : fmtSeconds(s.medianSeconds)}</td>
                  <td class="num">{i === 0 ? '—' : fmtSeconds(s.p90Seconds)}</td>
                </tr>
              ))}
            </tbody>
          </table>
        </div>
      )}
    </Panel>
  );
}
