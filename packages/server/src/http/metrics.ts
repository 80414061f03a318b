import { Counter, collectDefaultMetrics, Gauge, Histogram, Registry } from 'prom-client';
import type { StoreBacklog } from '../store/types.js';

/**
 * Accepted and duplicate messages of one app since the last scrape (`CollectorMetrics.statusTally`),
 * and of the accepted ones those clamped, skewed and with a pseudonymised install id: each goes into
 * its counter when metrics are read.
 */
export interface StatusTally {
  accepted: number;
  duplicate: number;
  clamped: number;
  skewed: number;
  pseudonymised: number;
}

/** A counter by app fed from the tallies' `field`, drained when metrics are read. */
function tallied(
  tallies: ReadonlyMap<string, StatusTally>,
  field: 'clamped' | 'skewed' | 'pseudonymised',
  options: { name: string; help: string; registers: Registry[] },
): Counter<'app'> {
  return new Counter({
    ...options,
    labelNames: ['app'],
    collect() {
      for (const [app, tally] of tallies) {
        if (tally[field] > 0) this.inc({ app }, tally[field]);
        tally[field] = 0;
      }
    },
  });
}

/**
 * The collector's Prometheus metrics, on a registry of its own (several collectors can live in one
 * process, e.g. in tests). Label values come from closed sets — registered app names, route names,
 * error codes and catalog reject reasons — never from raw request input.
 */
export interface CollectorMetrics {
  readonly registry: Registry;
  readonly events: Counter<'app' | 'status' | 'reason'>;
  /**
   * The running count of an app's accepted and duplicate messages (and of the accepted, those clamped,
   * skewed or pseudonymised), to add to: it goes into `events` (and `clamped`, `skewed`,
   * `pseudonymised`) when metrics are read. Counted per message on the ingest path, where a labelled
   * `inc` per request (hashing its labels each time) showed in the request thread's profile.
   */
  statusTally(app: string): StatusTally;
  readonly requestsRejected: Counter<'route' | 'code'>;
  readonly clamped: Counter<'app'>;
  readonly skewed: Counter<'app'>;
  /** Events whose install id was stored as its pseudonym (`storedInstallId`, docs/privacy.md). */
  readonly pseudonymised: Counter<'app'>;
  readonly requestDuration: Histogram<'route' | 'status'>;
  readonly commitEvents: Histogram;
  readonly commitDuration: Histogram<'result'>;
  readonly queueEvents: Gauge;
  readonly queueBytes: Gauge;
  readonly inflight: Gauge;
  readonly storeHealthy: Gauge;
  readonly quarantineDropped: Counter;
  readonly ingestWorkerStops: Counter;
  readonly connectionsDropped: Counter;
  /** Config reloads (SIGHUP), by result: `ok`, or `failed` (the running configuration stayed). */
  readonly configReloads: Counter<'result'>;
  /** `/api/v1` requests refused for a missing or wrong admin token: someone guessing shows here. */
  readonly apiUnauthorized: Counter;
  /** Apps a reload registered: their series start at 0, as those of the apps known at start. */
  startApps(apps: readonly string[]): void;
}

/**
 * `backlog` is read at each scrape: what the store acknowledged and has not put in its tables yet
 * (`StoreBacklog`). How far the answers lag is the first thing to watch when ClickHouse is away or
 * DuckDB loads fall behind, and the health text alone cannot be graphed or alerted on.
 */
export function createCollectorMetrics(
  backlog: () => StoreBacklog | undefined = () => undefined,
  workersBusy: () => number = () => 0,
  requestsInFlight: () => number = () => 0,
  initialApps: readonly string[] = [],
): CollectorMetrics {
  // Grows with a config reload's new apps; an app a reload removed keeps its series (its counts stand).
  const apps = new Set<string>();
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'telemark_' });
  const registers = [registry];
  const backlogGauge = (name: string, help: string, value: (b: StoreBacklog) => number) =>
    new Gauge({
      name,
      help,
      registers,
      collect() {
        const b = backlog();
        this.set(b ? value(b) : 0);
      },
    });
  new Gauge({
    name: 'telemark_ingest_worker_requests',
    help: 'Batch requests held by the ingest workers (being prepared, or waiting for a worker).',
    registers,
    collect() {
      this.set(workersBusy());
    },
  });
  backlogGauge(
    'telemark_store_backlog_events',
    'Events acknowledged (durable) and not yet in the tables: DuckDB intake log waiting for a load (0 where the engine counts batches).',
    (b) => b.events ?? 0,
  );
  backlogGauge(
    'telemark_store_backlog_batches',
    'Batches acknowledged (durable) and not yet in the tables: a ClickHouse journal waiting for delivery (0 where the engine counts events).',
    (b) => b.batches ?? 0,
  );
  backlogGauge(
    'telemark_store_backlog_bytes',
    'Bytes of the files holding acknowledged data not yet in the tables (intake log or journal).',
    (b) => b.bytes,
  );
  backlogGauge(
    'telemark_store_backlog_oldest_seconds',
    'Age of the oldest acknowledged write not yet in the tables (0 when nothing waits): how far the answers lag.',
    (b) => (b.oldestAt === undefined ? 0 : Math.max(0, (Date.now() - b.oldestAt) / 1000)),
  );
  backlogGauge(
    'telemark_store_backlog_full',
    '1 while the backlog is at its bound: new batches are refused (journal) or wait for a load (intake log).',
    (b) => (b.full ? 1 : 0),
  );
  // The store's verdict on journaled events (`StoreBacklog.delivered`): their answers, counted in
  // telemark_events_total, were provisional. A running total in the store, copied at each scrape; the
  // registered apps' series start at 0 (as telemark_events_total's), on stores that journal only.
  new Counter({
    name: 'telemark_journal_delivered_events_total',
    help: 'Events delivered from the ClickHouse journal into the tables, by app and the status the store found at delivery (accepted: stored; duplicate: stored already, or earlier in the delivery). Their answers were provisional (telemark_events_total): with acknowledge "journal" this counts every event, duplicates resent in separate batches included.',
    labelNames: ['app', 'status'],
    registers,
    collect() {
      const delivered = backlog()?.delivered;
      this.reset();
      if (delivered === undefined) return;
      for (const app of apps) for (const status of ['accepted', 'duplicate']) this.inc({ app, status }, 0);
      for (const [app, counts] of delivered) {
        this.inc({ app, status: 'accepted' }, counts.accepted);
        this.inc({ app, status: 'duplicate' }, counts.duplicate);
      }
    },
  });
  const tallies = new Map<string, StatusTally>();
  const metrics: CollectorMetrics = {
    registry,
    events: new Counter({
      name: 'telemark_events_total',
      help: 'Messages processed, by app and status (accepted, duplicate, rejected) and reject reason.',
      labelNames: ['app', 'status', 'reason'],
      registers,
      collect() {
        for (const [app, tally] of tallies) {
          if (tally.accepted > 0) this.inc({ app, status: 'accepted', reason: '' }, tally.accepted);
          if (tally.duplicate > 0) this.inc({ app, status: 'duplicate', reason: '' }, tally.duplicate);
          tally.accepted = 0;
          tally.duplicate = 0;
        }
      },
    }),
    statusTally(app) {
      let tally = tallies.get(app);
      if (tally === undefined) {
        tally = { accepted: 0, duplicate: 0, clamped: 0, skewed: 0, pseudonymised: 0 };
        // Apps come from the registry: a handful (a reload may add some; none is taken away).
        tallies.set(app, tally);
      }
      return tally;
    },
    requestsRejected: new Counter({
      name: 'telemark_requests_rejected_total',
      help: 'Whole ingest requests refused (auth, parse, limits, rate limits, queue full, shutdown), by error code; route "" for bad HTTP and request timeouts refused outside an ingest route (one met while an ingest body is read counts under its route).',
      labelNames: ['route', 'code'],
      registers,
    }),
    clamped: tallied(tallies, 'clamped', {
      name: 'telemark_events_clamped_total',
      help: 'Events whose time was more than 23 h ahead and was clamped to the receive time.',
      registers,
    }),
    skewed: tallied(tallies, 'skewed', {
      name: 'telemark_events_skewed_total',
      help: 'Events whose client clock was off by more than a minute (corrected from sentAt).',
      registers,
    }),
    pseudonymised: tallied(tallies, 'pseudonymised', {
      name: 'telemark_install_ids_pseudonymised_total',
      help: 'Events whose install id the scrubber would change (an e-mail address, a host name…), stored under its keyed pseudonym instead, by app',
      registers,
    }),
    requestDuration: new Histogram({
      name: 'telemark_request_duration_seconds',
      help: 'Ingest request latency, from the request to the response, by route and status code.',
      labelNames: ['route', 'status'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers,
    }),
    commitEvents: new Histogram({
      name: 'telemark_commit_batch_events',
      help: 'Events per group commit (one store.write()).',
      buckets: [1, 10, 50, 100, 250, 500, 1000, 2500, 5000, 10_000, 20_000],
      registers,
    }),
    commitDuration: new Histogram({
      name: 'telemark_commit_duration_seconds',
      help: 'Time of one group commit (store.write()), by result (ok, error).',
      labelNames: ['result'],
      buckets: [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5],
      registers,
    }),
    queueEvents: new Gauge({
      name: 'telemark_queue_events',
      help: 'Events waiting for the next group commit.',
      registers,
    }),
    queueBytes: new Gauge({
      name: 'telemark_queue_bytes',
      help: 'Request bytes waiting for the next group commit.',
      registers,
    }),
    // Read when scraped, not set on every request's entry and exit: two fewer updates per request.
    inflight: new Gauge({
      name: 'telemark_ingest_requests_in_flight',
      help: 'Ingest requests being read, processed or committed.',
      registers,
      collect() {
        this.set(requestsInFlight());
      },
    }),
    storeHealthy: new Gauge({
      name: 'telemark_store_healthy',
      help: '1 when the last commit succeeded, 0 after a failed one.',
      registers,
    }),
    ingestWorkerStops: new Counter({
      name: 'telemark_ingest_worker_stops_total',
      help: 'Ingest workers that failed or exited (each is started again; its requests got 503).',
      registers,
    }),
    connectionsDropped: new Counter({
      name: 'telemark_connections_dropped_total',
      help: 'Connections closed as they arrived, because queue.maxConnections were open.',
      registers,
    }),
    quarantineDropped: new Counter({
      name: 'telemark_quarantine_dropped_total',
      help: 'Refused requests answered but not kept in quarantine: the quarantine rate limit was reached, or the commit keeping them failed (store failing, queue full).',
      registers,
    }),
    configReloads: new Counter({
      name: 'telemark_config_reloads_total',
      help: 'Configuration reloads (SIGHUP) by result: ok, or failed (the file had problems, logged; the running configuration stayed).',
      labelNames: ['result'],
      registers,
    }),
    apiUnauthorized: new Counter({
      name: 'telemark_api_unauthorized_total',
      help: 'Query and admin API requests refused (401) for a missing or wrong admin token.',
      registers,
    }),
    startApps(names) {
      for (const app of names) {
        if (apps.has(app)) continue;
        apps.add(app);
        for (const status of ['accepted', 'duplicate']) metrics.events.inc({ app, status, reason: '' }, 0);
        metrics.clamped.inc({ app }, 0);
        metrics.skewed.inc({ app }, 0);
        metrics.pseudonymised.inc({ app }, 0);
      }
    },
  };
  // Prometheus takes a series' first sample as its baseline: a series born at 9 duplicates shows no
  // increase. The registered apps' series are known in advance, so they start at 0; so do the commits'
  // and the reloads' (an alert on failed commits would miss the first failure of a store that had never
  // failed).
  for (const result of ['ok', 'error']) metrics.commitDuration.zero({ result });
  for (const result of ['ok', 'failed']) metrics.configReloads.inc({ result }, 0);
  metrics.startApps(initialApps);
  return metrics;
}
