import { z } from 'zod';
import { TelemarkError } from '../../errors.js';
import type { StoreLogger } from '../types.js';

/** Options of `createClickHouseStore`. Validated once (all problems reported together), then frozen. */
export interface ClickHouseStoreOptions {
  /** HTTP interface of the server (or of any node of the cluster), e.g. `http://127.0.0.1:8123`. */
  readonly url: string;
  /** Created on `init()` when missing. @default 'telemark' */
  readonly database?: string;
  /** @default 'default' */
  readonly user?: string;
  /** @default '' */
  readonly password?: string;
  /**
   * Shards: the cluster's name in the servers' `remote_servers` configuration and the HTTP URL of every
   * node. Local tables are created on each node, `Distributed` tables and the views over them too, so
   * any node answers queries. Rows are sharded by the dedupe key, so a duplicate lands on the same shard.
   */
  readonly cluster?: { readonly name: string; readonly nodes: readonly string[] };
  /**
   * Exact dedupe by (app, messageId) against everything stored in this many days, on ClickHouse's clock
   * (the key index keeps at least this much; older months of it are dropped). @default 35 (min 7)
   */
  readonly dedupeWindowDays?: number;
  /**
   * One HTTP request to ClickHouse, ms: queries, the journal's deliveries (up to 500 records in one
   * write), start-up, mutations' statements. @default 60_000
   */
  readonly requestTimeoutMs?: number;
  /**
   * How long a write of the request path may take, ms, before its batch goes to the outage journal: with
   * `journal` (and not `journalFirst`), each ingest batch is first written straight to ClickHouse while
   * clients wait for the answer. It bounds that attempt as a whole — the wait behind writes sharing a
   * message, the key lookups and the INSERTs — so a server that accepts connections and never answers
   * holds ingest this long, not `requestTimeoutMs`. A normal group commit's write takes 0.1–0.5 s
   * (3,200–20,000 events); clients give up after 10 s (`@telemark/client`'s `timeouts.totalMs`).
   * At most `requestTimeoutMs`. @default 5_000 (or `requestTimeoutMs`, when that is shorter)
   */
  readonly insertTimeoutMs?: number;
  /**
   * How long a `SELECT 1` may take before the server counts as not answering, ms: asked first when the
   * store opens (and by `health()` and before retention), so a server that accepts connections but never
   * answers is reported this soon rather than after `requestTimeoutMs`. @default 10_000
   */
  readonly probeTimeoutMs?: number;
  /** Longest wait for a mutation (`deleteInstall`, retention, quarantine removal) to finish, ms. @default 300_000 */
  readonly mutationTimeoutMs?: number;
  /**
   * Refuse a database that does not exist (TMK_ERR_STORE_NO_DATA) instead of creating it: admin commands,
   * where a mistyped name must not pass for an empty store. @default false
   */
  readonly existingOnly?: boolean;
  /**
   * A write's second look for dedupe races, this long after its first (0: none): a rival whose INSERT was
   * not visible at the first look may still beat it, and only the loser corrects its daily counts. Set it
   * (e.g. 3_000) where several collectors share the database; alone, a collector has no rival and the
   * second look would cost a lookup per write. @default 0
   */
  readonly raceRecheckMs?: number;
  /**
   * Keep acknowledging while ClickHouse is unreachable: batches go to this durable local journal and are
   * delivered in order when it is back (`store/journal/`). The collector sets it to `<data>/journal`.
   */
  readonly journal?: {
    readonly dir: string;
    /** @default 1 GiB */
    readonly maxBytes?: number;
    /** @default 64 MiB */
    readonly segmentBytes?: number;
    /**
     * Acknowledge every batch once it is synced to the journal, and deliver to ClickHouse in the
     * background in large inserts (reads still see everything acknowledged). @default false
     */
    readonly journalFirst?: boolean;
    /** With `journalFirst`: deliver at most this often, ms. @default 250 */
    readonly deliverEveryMs?: number;
  };
  /**
   * Where the store's own lines (a start-up that waits for ClickHouse, each failed attempt to open) and
   * `@clickhouse/client`'s go, as JSON lines with a `component` field (`store/clickhouse/log.ts`).
   * `telemark serve` passes a pino logger; without one the store and the client log nothing.
   */
  readonly log?: StoreLogger;
}

export type ResolvedClickHouseStoreOptions = Readonly<
  Required<Omit<ClickHouseStoreOptions, 'cluster' | 'journal' | 'log'>>
> & {
  readonly cluster: { readonly name: string; readonly nodes: readonly string[] } | undefined;
  readonly journal: ClickHouseStoreOptions['journal'];
  readonly log: StoreLogger | undefined;
};

export const CLICKHOUSE_DEFAULTS = Object.freeze({
  database: 'telemark',
  user: 'default',
  password: '',
  dedupeWindowDays: 35, // days
  requestTimeoutMs: 60_000, // 60 s
  // Half the 10 s after which our client gives up (so the journal's answer reaches it), and 10× the write
  // of the largest group commit (20,000 events: 0.4–0.5 s on an idle 2-core machine).
  insertTimeoutMs: 5_000, // 5 s
  probeTimeoutMs: 10_000, // 10 s
  mutationTimeoutMs: 300_000, // 5 min
  raceRecheckMs: 0, // off: set where several collectors share the database
});

export const MIN_DEDUPE_WINDOW_DAYS = 7;

const identifier = z
  .string()
  .regex(/^[A-Za-z_][A-Za-z0-9_]*$/, 'must be a plain identifier ([A-Za-z_][A-Za-z0-9_]*)');
const httpUrl = z
  .string()
  .refine(
    (text) => /^https?:\/\/[^/\s]+\/?$/.test(text),
    'must be an http(s) URL of the server, e.g. http://127.0.0.1:8123',
  )
  // A URL shows in health details, logs and errors, where a password inside it would leak (2026-11-27).
  .refine(
    (text) => !/^https?:\/\/[^/\s]*@/.test(text),
    'must not carry a user or password (they would show in logs): give clickhouse.user and clickhouse.password (or --clickhouse-user and TELEMARK_CLICKHOUSE_PASSWORD)',
  );

const schema = z
  .object({
    url: httpUrl,
    database: identifier.optional(),
    user: z.string().min(1, 'must not be empty').optional(),
    password: z.string().optional(),
    cluster: z
      .object({
        name: identifier,
        nodes: z.array(httpUrl).min(2, 'must list every node (at least two)'),
      })
      .strict()
      .optional(),
    dedupeWindowDays: z.number().int().min(MIN_DEDUPE_WINDOW_DAYS).max(3650).optional(),
    requestTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    insertTimeoutMs: z.number().int().min(100).max(3_600_000).optional(),
    probeTimeoutMs: z.number().int().min(100).max(600_000).optional(),
    mutationTimeoutMs: z.number().int().min(100).max(86_400_000).optional(),
    raceRecheckMs: z.number().int().min(0).max(600_000).optional(),
    existingOnly: z.boolean().optional(),
    journal: z
      .object({
        dir: z.string().min(1, 'must be a directory path'),
        maxBytes: z.number().int().min(1024).optional(),
        segmentBytes: z.number().int().min(1024).optional(),
        journalFirst: z.boolean().optional(),
        deliverEveryMs: z.number().int().min(0).max(60_000).optional(),
      })
      .strict()
      .optional(),
  })
  .strict();

export function resolveClickHouseOptions(input: ClickHouseStoreOptions): ResolvedClickHouseStoreOptions {
  // A logger is not a setting: passed on as it is.
  const { log, ...settings } = input;
  const parsed = schema.safeParse(settings);
  const problems = parsed.success
    ? []
    : parsed.error.issues.map(
        (issue) => `clickhouse.${issue.path.join('.') || '(options)'}: ${issue.message}`,
      );
  problems.push(...timeoutProblems(settings));
  if (!parsed.success || problems.length > 0)
    throw new TelemarkError('TMK_ERR_CONFIG_INVALID', problems.map((p) => `- ${p}`).join('\n'));
  const o = parsed.data;
  const requestTimeoutMs = o.requestTimeoutMs ?? CLICKHOUSE_DEFAULTS.requestTimeoutMs;
  const trim = (url: string) => url.replace(/\/$/, '');
  return Object.freeze({
    url: trim(o.url),
    database: o.database ?? CLICKHOUSE_DEFAULTS.database,
    user: o.user ?? CLICKHOUSE_DEFAULTS.user,
    password: o.password ?? CLICKHOUSE_DEFAULTS.password,
    cluster: o.cluster
      ? Object.freeze({ name: o.cluster.name, nodes: Object.freeze(o.cluster.nodes.map(trim)) })
      : undefined,
    dedupeWindowDays: o.dedupeWindowDays ?? CLICKHOUSE_DEFAULTS.dedupeWindowDays,
    requestTimeoutMs,
    insertTimeoutMs: o.insertTimeoutMs ?? Math.min(CLICKHOUSE_DEFAULTS.insertTimeoutMs, requestTimeoutMs),
    probeTimeoutMs: o.probeTimeoutMs ?? CLICKHOUSE_DEFAULTS.probeTimeoutMs,
    mutationTimeoutMs: o.mutationTimeoutMs ?? CLICKHOUSE_DEFAULTS.mutationTimeoutMs,
    raceRecheckMs: o.raceRecheckMs ?? CLICKHOUSE_DEFAULTS.raceRecheckMs,
    existingOnly: o.existingOnly ?? false,
    journal: o.journal ? Object.freeze({ ...o.journal }) : undefined,
    log,
  });
}

/**
 * A write of the request path longer than any of its requests may take would never time out as such:
 * the request timeout would fail it first. Checked beside the schema (on what it lets through), so one
 * start reports every problem.
 */
function timeoutProblems(settings: Omit<ClickHouseStoreOptions, 'log'>): string[] {
  const { insertTimeoutMs: insert, requestTimeoutMs: request } = settings;
  if (typeof insert !== 'number' || insert > 3_600_000) return [];
  const limit = typeof request === 'number' ? request : CLICKHOUSE_DEFAULTS.requestTimeoutMs;
  if (insert <= limit) return [];
  return [
    `clickhouse.insertTimeoutMs: ${insert} ms is longer than clickhouse.requestTimeoutMs (${limit} ms${typeof request === 'number' ? '' : ', the default'}), which would end the write first; lower insertTimeoutMs or raise requestTimeoutMs`,
  ];
}
