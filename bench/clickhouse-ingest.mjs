#!/usr/bin/env node
// Ingest throughput into ClickHouse vs DuckDB, through the real collector, in the same run: `telemark serve`
// on a fresh DuckDB data dir, then `telemark serve --store clickhouse` on a private ClickHouse 18.16
// (scripts/clickhouse-server.sh; or TELEMARK_BENCH_CLICKHOUSE_URL), each under the same closed-loop load
// as bench/ingest-throughput.mjs (batches of 100 ~500 B events, our wire format; a 2xx means committed).
// Then two collectors on the one ClickHouse, half the connections each (the scale-out shape; on a
// 2-core machine they share the cores with ClickHouse and the load generator, so this is a sizing
// figure, not a speed-up). Then the outage journal: a collector whose ClickHouse is not there at all
// acknowledges into its journal (fsync'd), then a server comes up and the journal drains (events/s).
// And one collector that acknowledges from its journal (clickhouse.acknowledge: "journal"), counted by
// its rate into ClickHouse: from the start of its load until the last acknowledged event is there.
// Every run ends by checking that ClickHouse holds what was acknowledged.
// Target: ClickHouse ≥ DuckDB events/s.
//
//   npx tsc -b packages/server && node bench/clickhouse-ingest.mjs [--seconds 8] [--connections 32]
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import {
  cpuMs,
  fmt,
  load,
  loadWithCpu,
  ROOT,
  sampleRss,
  startCollector,
  WRITE_KEY,
} from './_ingest-harness.mjs';

const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 ? Number(process.argv[i + 1]) : fallback;
};
const SECONDS = arg('seconds', 8);
const CONNECTIONS = arg('connections', 32);
const TARGET_RATIO = 1;

const freePort = () =>
  new Promise((resolve) => {
    const server = net.createServer().listen(0, '127.0.0.1', () => {
      const { port } = server.address();
      server.close(() => resolve(port));
    });
  });

async function clickhouseServer(ports) {
  if (process.env.TELEMARK_BENCH_CLICKHOUSE_URL && !ports)
    return { url: process.env.TELEMARK_BENCH_CLICKHOUSE_URL, pid: undefined, stop: () => {} };
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-ch-'));
  const [http, tcp] = ports ?? [await freePort(), await freePort()];
  const script = path.join(ROOT, 'scripts/clickhouse-server.sh');
  execFileSync(script, ['start', dir, String(http), String(tcp)]);
  return {
    url: `http://127.0.0.1:${http}`,
    pid: Number(fs.readFileSync(path.join(dir, 'pid'), 'utf8')),
    stop() {
      execFileSync(script, ['stop', dir]);
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
}

async function clickhouseCount(url, database) {
  const response = await fetch(`${url}/?database=${database}`, {
    method: 'POST',
    body: "SELECT count() FROM events WHERE app = 'telepresence2'",
  });
  return Number((await response.text()).trim());
}

const common = {
  path: '/v1/batch',
  kind: 'batch',
  eventsPerBatch: 100,
  connections: CONNECTIONS,
  durationMs: SECONDS * 1000,
  warmupMs: 2000,
  headers: { authorization: `Bearer ${WRITE_KEY}` },
};

const line = (name, r, extra = '') =>
  `${name.padEnd(36)} ${fmt(r.eventsPerSecond).padStart(10)} events/s   p50 ${fmt(r.p50, 1).padStart(6)} ms  p99 ${fmt(r.p99, 1).padStart(7)} ms${r.cpuMsPer1kEvents ? `  collector CPU ${fmt(r.cpuMsPer1kEvents, 1)} ms/1k` : ''}${extra}  ${JSON.stringify(r.statuses)}${r.errors ? ` errors ${r.errors}` : ''}`;

const ch = await clickhouseServer();
try {
  // — DuckDB —
  const duck = await startCollector();
  const duckRss = sampleRss(duck.pid);
  const duckRun = await loadWithCpu(duck.pid, { ...common, url: duck.url });
  const duckPeak = duckRss.stop();
  await duck.stop();

  // — ClickHouse, one collector —
  const database = `bench_${Date.now().toString(36)}`;
  const chCollector = await startCollector({ store: 'clickhouse', clickhouse: { url: ch.url, database } });
  const chRss = sampleRss(chCollector.pid);
  const serverRss = ch.pid ? sampleRss(ch.pid) : undefined;
  const serverCpuBefore = ch.pid ? cpuMs(ch.pid) : 0;
  const chRun = await loadWithCpu(chCollector.pid, { ...common, url: chCollector.url });
  const serverCpu = ch.pid ? cpuMs(ch.pid) - serverCpuBefore : Number.NaN;
  const chPeak = chRss.stop();
  const serverPeak = serverRss ? serverRss.stop() : Number.NaN;
  await chCollector.stop();
  const storedOne = await clickhouseCount(ch.url, database);

  // — ClickHouse, one collector, acknowledging from its journal (clickhouse.acknowledge: "journal"):
  // the rate that counts is the one into ClickHouse, from the start of the load until the last
  // acknowledged event is there —
  const databaseJf = `${database}_jfirst`;
  const jfData = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-jfirst-'));
  const jfCollector = await startCollector({
    data: jfData,
    store: 'clickhouse',
    clickhouse: { url: ch.url, database: databaseJf, acknowledge: 'journal' },
  });
  const jfRss = sampleRss(jfCollector.pid);
  const jfServerCpuBefore = ch.pid ? cpuMs(ch.pid) : 0;
  const jfStart = performance.now();
  const jfRun = await loadWithCpu(jfCollector.pid, { ...common, url: jfCollector.url });
  const jfLoadEnd = performance.now();
  let storedJf = 0;
  for (;;) {
    storedJf = await clickhouseCount(ch.url, databaseJf);
    if (storedJf >= jfRun.eventsTotal || performance.now() - jfLoadEnd > 300_000) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  const jfSeconds = (performance.now() - jfStart) / 1000;
  const jfTail = (performance.now() - jfLoadEnd) / 1000;
  const jfServerCpu = ch.pid ? cpuMs(ch.pid) - jfServerCpuBefore : Number.NaN;
  const jfPeak = jfRss.stop();
  await jfCollector.stop();
  fs.rmSync(jfData, { recursive: true, force: true });
  const jfIntoClickHouse = jfRun.eventsTotal / jfSeconds;

  // — ClickHouse, two collectors —
  const database2 = `${database}_two`;
  const pair = await Promise.all(
    [1, 2].map(() =>
      startCollector({ store: 'clickhouse', clickhouse: { url: ch.url, database: database2 } }),
    ),
  );
  const halves = await Promise.all(
    pair.map((c) => load({ ...common, url: c.url, connections: Math.max(1, CONNECTIONS / 2) })),
  );
  await Promise.all(pair.map((c) => c.stop()));
  const storedTwo = await clickhouseCount(ch.url, database2);
  const two = {
    eventsPerSecond: halves.reduce((s, r) => s + r.eventsPerSecond, 0),
    p50: Math.max(...halves.map((r) => r.p50)),
    p99: Math.max(...halves.map((r) => r.p99)),
    statuses: halves.map((r) => r.statuses),
    errors: halves.reduce((s, r) => s + r.errors, 0),
    acked: halves.reduce((s, r) => s + r.eventsTotal, 0),
  };

  // — the outage journal: ClickHouse not there at all, every batch fsync'd to the journal; then a server
  // comes up on that port and the journal drains —
  const journalPorts = [await freePort(), await freePort()];
  const journalData = fs.mkdtempSync(path.join(os.tmpdir(), 'telemark-bench-journal-'));
  const journalDir = path.join(journalData, 'journal');
  const database3 = `${database}_journal`;
  const journaling = await startCollector({
    data: journalData,
    store: 'clickhouse',
    clickhouse: { url: `http://127.0.0.1:${journalPorts[0]}`, database: database3 },
  });
  const journalRun = await loadWithCpu(journaling.pid, { ...common, url: journaling.url });
  const segments = () => fs.readdirSync(journalDir).filter((n) => n.endsWith('.seg'));
  const journalBytes = segments().reduce((sum, n) => sum + fs.statSync(path.join(journalDir, n)).size, 0);
  const late = await clickhouseServer(journalPorts);
  const drainStart = performance.now();
  const drainCpuBefore = cpuMs(journaling.pid);
  while (segments().length > 0) await new Promise((r) => setTimeout(r, 50));
  const drainSeconds = (performance.now() - drainStart) / 1000;
  const drainCpu = cpuMs(journaling.pid) - drainCpuBefore;
  await journaling.stop();
  const storedJournal = await clickhouseCount(late.url, database3);
  late.stop();
  fs.rmSync(journalData, { recursive: true, force: true });

  console.log(
    `ingest into ClickHouse vs DuckDB — batches of 100 events, ${CONNECTIONS} connections, ${SECONDS} s per run, ${os.cpus().length} cores`,
  );
  console.log(line('DuckDB (embedded, one collector)', duckRun, `  RSS ${fmt(duckPeak / 1048576)} MB`));
  console.log(
    line(
      'ClickHouse (one collector)',
      chRun,
      `  RSS ${fmt(chPeak / 1048576)} MB  server CPU ${fmt((serverCpu / chRun.eventsTotal) * 1000, 1)} ms/1k, RSS ${fmt(serverPeak / 1048576)} MB`,
    ),
  );
  console.log(
    line(
      'ClickHouse, acknowledged from journal',
      jfRun,
      `  RSS ${fmt(jfPeak / 1048576)} MB  server CPU ${fmt((jfServerCpu / jfRun.eventsTotal) * 1000, 1)} ms/1k`,
    ),
  );
  console.log(
    `${'  …all of it in ClickHouse'.padEnd(36)} ${fmt(jfIntoClickHouse).padStart(10)} events/s   (the last ${jfTail.toFixed(1)} s after the load ended)`,
  );
  console.log(line('ClickHouse (two collectors)', two));
  console.log(
    line(
      'ClickHouse down: into the journal',
      journalRun,
      `  ${fmt(journalBytes / journalRun.eventsTotal)} B/event on disk`,
    ),
  );
  console.log(
    `${'journal drained once ClickHouse is up'.padEnd(36)} ${fmt(journalRun.eventsTotal / drainSeconds).padStart(10)} events/s   ${fmt(journalRun.eventsTotal)} events in ${drainSeconds.toFixed(1)} s  collector CPU ${fmt((drainCpu / journalRun.eventsTotal) * 1000, 1)} ms/1k`,
  );
  console.log(
    `stored in ClickHouse: ${fmt(storedOne)} (acknowledged ${fmt(chRun.eventsTotal)}), journal first ${fmt(storedJf)} (acknowledged ${fmt(jfRun.eventsTotal)}), two collectors ${fmt(storedTwo)} (acknowledged ${fmt(two.acked)}), from the journal ${fmt(storedJournal)} (acknowledged ${fmt(journalRun.eventsTotal)})`,
  );
  if (
    storedOne < chRun.eventsTotal ||
    storedJf < jfRun.eventsTotal ||
    storedTwo < two.acked ||
    storedJournal < journalRun.eventsTotal
  ) {
    console.log('ERROR: ClickHouse holds fewer events than were acknowledged');
    process.exitCode = 1;
  }
  // The better of the two ways to run, counted conservatively: journal first by its rate into ClickHouse.
  const direct = chRun.eventsPerSecond / duckRun.eventsPerSecond;
  const journalFirst = jfIntoClickHouse / duckRun.eventsPerSecond;
  console.log(
    `  acknowledge after insert: ${direct.toFixed(2)} of DuckDB; journal first, into ClickHouse: ${journalFirst.toFixed(2)}`,
  );
  const ratio = Math.max(direct, journalFirst);
  console.log(
    `ratio: ClickHouse/DuckDB events/s = ${ratio.toFixed(2)} (target ≥ ${TARGET_RATIO.toFixed(2)}) ${ratio >= TARGET_RATIO ? 'PASS' : 'MISS'}`,
  );
} finally {
  ch.stop();
}
