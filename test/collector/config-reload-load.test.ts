/**
 * Reloads of a real `telemark serve` under sustained ingest — batches through the ingest workers,
 * single calls and Metriton reports on the request thread: no 5xx, each answer from one set of apps
 * (the catalog that judged its messages and the control block it carries agree), every accepted
 * message stored once, and the counters agree with the rows.
 */
import { writeFileSync } from 'node:fs';
import { afterAll, expect, it } from 'vitest';
import { connectReport, goIndent, tpReport } from '../../packages/server/src/ingest/_metriton-fixtures.js';
import { sql } from '../../packages/server/src/store/sql.js';
import {
  baseConfig,
  bearer,
  CATALOG_V1,
  killChildren,
  MYTOOL_CATALOG,
  MYTOOL_KEY,
  openData,
  ourMessage,
  postJson,
  startChild,
  tempDir,
} from './_helpers.js';

afterAll(killChildren);

const RELOADS = 30;

it('serves every request under one set of apps while reloads come under load', async () => {
  const data = tempDir();
  // v1 refuses `install` and says 1.0.0; v2 takes it and says 2.0.0.
  const v1 = { apps: { mytool: { catalog: CATALOG_V1, writeKeys: [MYTOOL_KEY], latestVersion: '1.0.0' } } };
  const v2 = {
    apps: { mytool: { catalog: MYTOOL_CATALOG, writeKeys: [MYTOOL_KEY], latestVersion: '2.0.0' } },
  };
  const child = await startChild(data, v1);
  let loading = true;
  const accepted = new Set<string>();
  const statuses: number[] = [];
  const mixed: string[] = [];
  let n = 0;
  const batches = async (worker: number) => {
    while (loading) {
      const ids = Array.from({ length: 20 }, (_, i) => `b-${worker}-${n}-${i}`);
      n++;
      const answer = await postJson(
        `${child.url}/v1/batch`,
        {
          batch: ids.map((id, i) =>
            i === 0 ? ourMessage(id, { event: 'install', properties: {} }) : ourMessage(id),
          ),
        },
        bearer(),
      );
      statuses.push(answer.status);
      if (answer.status !== 200) continue;
      const results = answer.json?.results as { messageId: string; status: string }[];
      for (const r of results) if (r.status === 'accepted') accepted.add(r.messageId);
      const version = (answer.json?.control as { latestVersion?: string } | undefined)?.latestVersion;
      const install = results[0]?.status;
      if (version !== (install === 'accepted' ? '2.0.0' : '1.0.0')) mixed.push(`${install} ${version}`);
    }
  };
  const singles = async () => {
    while (loading) {
      const id = `t-${n++}`;
      const answer = await postJson(`${child.url}/v1/track`, ourMessage(id), bearer());
      statuses.push(answer.status);
      if (answer.status === 200) accepted.add(id);
    }
  };
  let reports = 0;
  const scouts = async () => {
    while (loading) {
      const report = tpReport({ ...connectReport.metadata, index: reports++ });
      statuses.push((await postJson(`${child.url}/scout`, goIndent(report))).status);
    }
  };
  const load = [batches(1), batches(2), batches(3), singles(), scouts()];
  for (let i = 1; i <= RELOADS; i++) {
    const seen = child.output().length;
    writeFileSync(child.configFile, JSON.stringify(baseConfig(data, i % 2 ? v2 : v1)));
    child.proc.kill('SIGHUP');
    while (!child.output().slice(seen).includes('configuration reloaded'))
      await new Promise((resolve) => setTimeout(resolve, 10));
  }
  loading = false;
  await Promise.all(load);

  expect(statuses.filter((status) => status >= 500)).toEqual([]);
  expect(mixed).toEqual([]);
  expect(reports).toBeGreaterThan(0);
  const metrics = await (await fetch(`${child.url}/metrics`)).text();
  const counted = (app: string) =>
    Number(
      new RegExp(`telemark_events_total\\{app="${app}",status="accepted",reason=""\\} (\\d+)`).exec(
        metrics,
      )?.[1],
    );
  expect(metrics).toContain(`telemark_config_reloads_total{result="ok"} ${RELOADS}`);
  child.proc.kill('SIGTERM');
  expect(await child.exited).toEqual({ code: 0, signal: null });
  const store = await openData(data);
  try {
    const rows = async (app: string) =>
      Number(
        (await store.query<{ n: number }>(sql`SELECT count(*) AS n FROM events WHERE app = ${app}`))[0]?.n,
      );
    // Every accepted message stored once, and counted as stored.
    expect(await rows('mytool')).toBe(accepted.size);
    expect(counted('mytool')).toBe(accepted.size);
    expect(await rows('telepresence2')).toBe(counted('telepresence2'));
  } finally {
    await store.close();
  }
}, 40_000);
