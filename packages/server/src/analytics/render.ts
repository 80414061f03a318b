/**
 * Views as text for `telemark query`: aligned tables with sparklines for people, CSV (one tidy row per
 * figure) and JSON (the API's exact response) for machines. Works on the JSON a view returns, so output is
 * the same whether the view ran in this process (`--data`) or came over HTTP (`--url`).
 */

import { terminalJson, terminalText } from '../terminal-text.js';

export const FORMATS = ['table', 'json', 'csv'] as const;
export type OutputFormat = (typeof FORMATS)[number];

// biome-ignore lint/suspicious/noExplicitAny: renders the API's JSON, whose shape each function knows.
type Json = any;
type Cell = string | number | null | undefined;

const BARS = '▁▂▃▄▅▆▇█';

/** ▁▂▃▄▅▆▇█ from 0 to the series' maximum; a gap where there is no value. */
export function sparkline(values: readonly (number | null)[]): string {
  const max = Math.max(0, ...values.filter((v): v is number => v !== null));
  return values
    .map((v) => {
      if (v === null) return ' ';
      if (max === 0) return BARS[0];
      return BARS[Math.min(BARS.length - 1, Math.round((v / max) * (BARS.length - 1)))];
    })
    .join('');
}

const percent = (v: number | null | undefined): string =>
  v === null || v === undefined ? '–' : `${(v * 100).toFixed(1)}%`;
const day = (iso: string): string => iso.slice(0, 10);
const clip = (s: string, max: number): string => (s.length > max ? `${s.slice(0, max - 1)}…` : s);

/**
 * An app version in a table: a blank one is `""` in the answer, an empty cell to a reader; ingest stores a
 * version a client did not send as `unknown`, so both read the same (the dashboard's too). CSV and JSON
 * keep `""`.
 */
const versionCell = (version: string): string => (version.trim() === '' ? 'unknown' : version);

/** The versions an error was seen in, as one table cell. */
const versionSpan = (first: string, last: string): string =>
  first === last ? versionCell(first) : `${versionCell(first)}–${versionCell(last)}`;

/** Columns padded to their widest cell; numbers (and percentages) right-aligned. */
export function table(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  // Error samples and trait values are data: never let them drive the terminal.
  const text = rows.map((row) =>
    row.map((cell) => terminalText(cell === null || cell === undefined ? '–' : String(cell))),
  );
  const numeric = headers.map(
    (_, i) =>
      rows.length > 0 &&
      rows.every(
        (row) => typeof row[i] === 'number' || /^-?\d+(?:\.\d+)?%?$|^–$/.test(String(row[i] ?? '–')),
      ),
  );
  const widths = headers.map((h, i) =>
    Math.max([...h].length, ...text.map((row) => [...(row[i] ?? '')].length)),
  );
  const line = (cells: readonly string[]) =>
    cells
      .map((cell, i) => {
        const pad = ' '.repeat(Math.max(0, widths[i]! - [...cell].length));
        return numeric[i] ? pad + cell : cell + pad;
      })
      .join('  ')
      .trimEnd();
  return [line(headers), line(widths.map((w) => '─'.repeat(w))), ...text.map(line)].join('\n');
}

/**
 * RFC 4180, plus a leading `'` on text that a spreadsheet would run as a formula; control, line and bidi
 * characters in text as `\uXXXX` (printed to a terminal as often as to a file).
 */
export function csv(headers: readonly string[], rows: readonly (readonly Cell[])[]): string {
  const cell = (value: Cell): string => {
    if (value === null || value === undefined) return '';
    if (typeof value === 'number') return String(value);
    const shown = terminalText(value);
    const text = /^[=+\-@]/.test(shown) ? `'${shown}` : shown;
    return /[",\r\n]/.test(text) ? `"${text.replace(/"/g, '""')}"` : text;
  };
  return [headers, ...rows].map((row) => row.map(cell).join(',')).join('\n');
}

interface Tabular {
  readonly title?: string;
  readonly sections: { readonly title?: string; readonly headers: string[]; readonly rows: Cell[][] }[];
}

const rangeTitle = (r: Json): string =>
  `${r.params.app} · ${r.params.from} → ${r.params.to}${r.params.interval ? ` · per ${r.params.interval}` : ''}`;

/** The table (and CSV) form of each view: the same rows, the table adds sparklines. */
function tabulate(view: string, r: Json, forTable: boolean): Tabular {
  const spark = (values: (number | null)[]) => (forTable ? [sparkline(values)] : []);
  switch (view) {
    case 'overview':
      return {
        title: rangeTitle(r),
        sections: [
          {
            headers: ['metric', 'value', 'previous'],
            rows: [
              ['events', r.events, r.previous.events],
              ['installs', r.installs, r.previous.installs],
              ['daily active installs', r.activeInstalls.daily, null],
              ['weekly active installs', r.activeInstalls.weekly, null],
              ['monthly active installs', r.activeInstalls.monthly, null],
              ['latest version', r.latestVersion ?? '–', null],
              ...r.outcomes.map((o: Json) => [
                `${o.outcome} rate (${o.total} results)`,
                forTable ? percent(o.rate) : o.rate,
                forTable ? percent(o.previousRate) : o.previousRate,
              ]),
            ],
          },
        ],
      };
    case 'trends':
      return forTable
        ? {
            title: rangeTitle(r),
            sections: [
              {
                headers: ['event', 'events', 'peak installs', 'events per bucket'],
                rows: r.series.map((s: Json) => [
                  s.event,
                  s.total,
                  Math.max(0, ...s.installs),
                  ...spark(s.events),
                ]),
              },
            ],
          }
        : {
            sections: [
              {
                headers: ['bucket', 'event', 'events', 'installs'],
                rows: r.series.flatMap((s: Json) =>
                  r.buckets.map((b: string, i: number) => [b, s.event, s.events[i], s.installs[i]]),
                ),
              },
            ],
          };
    case 'installs':
      return {
        title: forTable
          ? `${rangeTitle(r)}\ndaily   ${sparkline(r.daily)}\nweekly  ${sparkline(r.weekly)}\nmonthly ${sparkline(r.monthly)}`
          : undefined,
        sections: [
          {
            headers: ['bucket', 'daily', 'weekly', 'monthly'],
            rows: r.buckets.map((b: string, i: number) => [
              forTable ? b.slice(0, 16).replace('T', ' ') : b,
              r.daily[i],
              r.weekly[i],
              r.monthly[i],
            ]),
          },
        ],
      };
    case 'outcomes': {
      if (r.breakdownBy)
        return {
          title: forTable ? `${rangeTitle(r)} · by ${r.breakdownBy}` : undefined,
          sections: [
            {
              headers: ['outcome', r.breakdownBy, 'installs', 'total', 'success', 'failure', 'rate'],
              rows: r.outcomes.flatMap((o: Json) =>
                (o.breakdown ?? []).map((b: Json) => [
                  o.outcome,
                  b.value,
                  b.installs,
                  b.total,
                  b.success,
                  b.failure,
                  forTable ? percent(b.rate) : b.rate,
                ]),
              ),
            },
          ],
        };
      if (forTable)
        return {
          title: rangeTitle(r),
          sections: [
            {
              headers: ['outcome', 'total', 'success', 'failure', 'rate', 'rate per bucket'],
              rows: r.outcomes.map((o: Json) => [
                o.outcome,
                o.total,
                o.success,
                o.failure,
                percent(o.overallRate),
                ...spark(o.rate),
              ]),
            },
          ],
        };
      return {
        sections: [
          {
            headers: ['outcome', 'bucket', 'measure', 'value'],
            rows: r.outcomes.flatMap((o: Json) =>
              o.buckets.flatMap((b: string, i: number) => [
                ...Object.keys(o.results).map((name) => [o.outcome, b, name, o.results[name][i]]),
                [o.outcome, b, 'rate', o.rate[i]],
              ]),
            ),
          },
        ],
      };
    }
    case 'funnel':
      return {
        title: forTable ? `${rangeTitle(r)} · ${r.title} (window ${r.windowSeconds} s)` : undefined,
        sections: [
          {
            headers: [
              'step',
              'event',
              'sessions',
              'conversion',
              'from previous',
              'drop-off',
              'median s',
              'p90 s',
            ],
            rows: r.steps.map((s: Json, i: number) => [
              i + 1,
              s.event,
              s.sessions,
              forTable ? percent(s.conversion) : s.conversion,
              forTable ? percent(s.fromPrevious) : s.fromPrevious,
              s.dropOff,
              s.medianSeconds,
              s.p90Seconds,
            ]),
          },
        ],
      };
    case 'errors':
      return {
        title: forTable ? `${rangeTitle(r)} · newest version ${r.newestVersion ?? '–'}` : undefined,
        sections: [
          {
            headers: forTable
              ? ['fingerprint', 'event', 'count', 'installs', 'versions', 'new in', 'trend', 'sample']
              : [
                  'fingerprint',
                  'event',
                  'count',
                  'installs',
                  'firstVersion',
                  'lastVersion',
                  'firstSeen',
                  'lastSeen',
                  'newInVersion',
                  'sample',
                ],
            rows: r.errors.map((e: Json) =>
              forTable
                ? [
                    e.fingerprint,
                    e.event,
                    e.count,
                    e.installs,
                    versionSpan(e.firstVersion, e.lastVersion),
                    e.newInVersion ?? '',
                    sparkline(e.trend),
                    clip(e.sample, 60),
                  ]
                : [
                    e.fingerprint,
                    e.event,
                    e.count,
                    e.installs,
                    e.firstVersion,
                    e.lastVersion,
                    e.firstSeen,
                    e.lastSeen,
                    e.newInVersion,
                    e.sample,
                  ],
            ),
          },
        ],
      };
    case 'error':
      return {
        title: forTable
          ? `${r.fingerprint} · ${r.event} · ${r.count} times on ${r.installs} installs · ${r.firstSeen} → ${r.lastSeen}`
          : undefined,
        sections: forTable
          ? [
              {
                title: 'versions',
                headers: ['version', 'count'],
                rows: r.versions.map((v: Json) => [versionCell(v.version), v.count]),
              },
              { title: 'OS', headers: ['os', 'count'], rows: r.os.map((v: Json) => [v.value, v.count]) },
              {
                title: 'latest samples',
                headers: ['time', 'version', 'os', 'text'],
                rows: r.samples.map((s: Json) => [
                  s.timestamp,
                  versionCell(s.appVersion),
                  s.osName,
                  clip(s.text, 100),
                ]),
              },
            ]
          : [
              {
                headers: ['timestamp', 'appVersion', 'osName', 'event', 'text'],
                rows: r.samples.map((s: Json) => [s.timestamp, s.appVersion, s.osName, s.event, s.text]),
              },
            ],
      };
    case 'breakdown':
      return {
        title: forTable ? `${rangeTitle(r)} · by ${r.dimension} · ${r.installs} installs` : undefined,
        sections: [
          {
            headers: [r.dimension, 'events', 'installs', 'share'],
            rows: r.rows.map((row: Json) => [
              row.value,
              row.events,
              row.installs,
              forTable ? percent(row.share) : row.share,
            ]),
          },
        ],
      };
    case 'adoption':
      return forTable
        ? {
            title: `${rangeTitle(r)} · weekly active installs ${sparkline(r.activeInstalls)}`,
            sections: [
              {
                headers: ['version', 'latest share', 'latest installs', 'share per week'],
                rows: r.versions.map((v: Json) => [
                  v.version,
                  percent(v.share.at(-1)),
                  v.installs.at(-1) ?? 0,
                  ...spark(v.share),
                ]),
              },
            ],
          }
        : {
            sections: [
              {
                headers: ['week', 'version', 'installs', 'share'],
                rows: r.versions.flatMap((v: Json) =>
                  r.buckets.map((b: string, i: number) => [b, v.version, v.installs[i], v.share[i]]),
                ),
              },
            ],
          };
    case 'retention': {
      const weeks = Math.max(0, ...r.cohorts.map((c: Json) => c.retained.length));
      return forTable
        ? {
            title: `${r.params.app} · cohorts from ${day(r.params.from)} · installs retained per week after first seen`,
            sections: [
              {
                headers: ['cohort', 'installs', ...Array.from({ length: weeks }, (_, i) => `w${i}`)],
                rows: r.cohorts.map((c: Json) => [c.week, c.installs, ...c.rate.map(percent)]),
              },
            ],
          }
        : {
            sections: [
              {
                headers: ['cohort', 'installs', 'weeksAfter', 'retained', 'rate'],
                rows: r.cohorts.flatMap((c: Json) =>
                  c.retained.map((n: number, i: number) => [c.week, c.installs, i, n, c.rate[i]]),
                ),
              },
            ],
          };
    }
    case 'health': {
      const metrics: Cell[][] = [
        ['events', r.events],
        ['ingest lag p50 s', r.ingestLagSeconds.p50],
        ['ingest lag p90 s', r.ingestLagSeconds.p90],
        ['ingest lag p99 s', r.ingestLagSeconds.p99],
        ['rejected', r.rejected],
        ['duplicates', r.duplicates],
        ['clamped', r.clamped],
        ['skewed', r.skewed],
        ['rate limited', r.rateLimited],
        ['dropped by clients', r.droppedByClients],
        ['CI share', forTable ? percent(r.ciShare) : r.ciShare],
        ['test share', forTable ? percent(r.testShare) : r.testShare],
        ['quarantine', r.quarantine],
        ...r.rejects.map((x: Json) => [`rejected: ${x.reason}`, x.count]),
      ];
      return {
        title: forTable
          ? `${rangeTitle(r)}\naccepted  ${sparkline(r.series.accepted)}\nduplicate ${sparkline(r.series.duplicate)}\nrejected  ${sparkline(r.series.rejected)}`
          : undefined,
        sections: [{ headers: ['metric', 'value'], rows: metrics }],
      };
    }
    default:
      return { sections: [] };
  }
}

/** One view's response as text in the chosen format (no trailing newline). */
export function renderView(view: string, response: Json, format: OutputFormat): string {
  if (format === 'json') return terminalJson(response);
  const { title, sections } = tabulate(view, response, format === 'table');
  if (format === 'csv') return sections.map((s) => csv(s.headers, s.rows)).join('\n\n');
  return [
    ...(title ? [title.split('\n').map(terminalText).join('\n')] : []),
    ...sections.map((s) =>
      [s.title ? `${s.title}:` : '', s.rows.length === 0 ? '(no data)' : table(s.headers, s.rows)]
        .filter(Boolean)
        .join('\n'),
    ),
  ].join('\n\n');
}
