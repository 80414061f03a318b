import { mkdtempSync, writeFileSync } from 'node:fs';
import { availableParallelism, tmpdir } from 'node:os';
import { join } from 'node:path';
import { catalogToJSON } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';
import { describe, expect, it } from 'vitest';
import { isTelemarkError } from '../errors.js';
import { DEFAULTS, loadServeConfig, memoryLimitBytes, resolveServeConfig } from './serve-config.js';

const mytool = {
  app: 'mytool',
  events: { run: { description: 'A command ran.', traits: { ok: { type: 'boolean', required: true } } } },
};

function configError(fn: () => unknown): string {
  try {
    fn();
  } catch (error) {
    if (isTelemarkError(error) && error.code === 'TMK_ERR_CONFIG_INVALID') return error.message;
    throw error;
  }
  throw new Error('expected TMK_ERR_CONFIG_INVALID');
}

describe('serve configuration', () => {
  it('defaults to port 8787 on 127.0.0.1, DuckDB, Segment limits and the built-in Telepresence app', () => {
    const config = resolveServeConfig({}, '/srv');
    expect(config.port).toBe(8787);
    expect(config.host).toBe('127.0.0.1');
    expect(config.dataDir).toBe('/srv/telemark-data');
    expect(config.store).toBe('duckdb');
    expect(config.backgroundNice).toBe(10);
    expect(config.ingestWorkers).toBe(availableParallelism() < 2 ? 0 : Math.min(4, availableParallelism()));
    expect(resolveServeConfig({ ingestWorkers: 0 }).ingestWorkers).toBe(0);
    expect(config.duckdb).toEqual({ memoryLimit: '512MB' });
    expect(config.retention).toEqual({ intervalMinutes: 60, unattributedQuarantineDays: 30 });
    expect(config.limits).toEqual({
      maxEventBytes: 32 * 1024,
      maxBatchBytes: 500 * 1024,
      maxBatchEvents: 2500,
    });
    const tp = config.registry.get('telepresence2');
    expect(tp?.allowKeyless).toBe(true);
    expect(tp?.catalog.app).toBe('telepresence2');
    expect(tp?.rateLimits).toEqual(DEFAULTS.rateLimits);
    // The engine's own window unless configured.
    expect(config.dedupeWindowDays).toBeUndefined();
    expect(resolveServeConfig({ dedupeWindowDays: 30 }).dedupeWindowDays).toBe(30);
  });

  it('reports every problem at once', () => {
    const message = configError(() =>
      resolveServeConfig({
        port: 70_000,
        store: 'sqlite',
        surprise: true,
        limits: { maxBatchEvents: -1 },
        backgroundNice: 20,
        ingestWorkers: -1,
        dedupeWindowDays: 6,
        duckdb: { memoryLimit: 'lots' },
        retention: { unattributedQuarantineDays: 1.5 },
        apps: { mytool: { writeKeys: ['short'] } },
      }),
    );
    expect(message).toContain('retention.unattributedQuarantineDays');
    expect(message).toContain('backgroundNice');
    expect(message).toContain('ingestWorkers');
    expect(message).toMatch(/dedupeWindowDays: .*7/);
    expect(message).toContain('duckdb.memoryLimit');
    expect(message).toContain('port');
    expect(message).toContain('store');
    expect(message).toContain('surprise');
    expect(message).toContain('limits.maxBatchEvents');
    expect(message).toContain('apps.mytool.writeKeys.0');
  });

  it('refuses a rate slower than one event per 1,000 s, top level and per app, naming the fix', () => {
    const slow = 'must be at least 0.001 (one event per 1,000 s): set 0.001 or more';
    const message = configError(() =>
      resolveServeConfig({
        rateLimits: { perWriteKey: { perSecond: 0.0005, burst: 10 } },
        apps: { telepresence2: { rateLimits: { perInstall: { perSecond: 1e-25, burst: 5 } } } },
      }),
    );
    expect(message).toContain(`rateLimits.perWriteKey.perSecond: ${slow}`);
    expect(message).toContain(`apps.telepresence2.rateLimits.perInstall.perSecond: ${slow}`);
    const ok = resolveServeConfig({
      apps: { telepresence2: { rateLimits: { perInstall: { perSecond: 0.001, burst: 5 } } } },
    });
    expect(ok.registry.get('telepresence2')?.rateLimits.perInstall.perSecond).toBe(0.001);
  });

  it('needs twice a batch of buckets for the rate limits, with or without schema problems beside it', () => {
    const few = 'rateLimitKeys: must be at least twice limits.maxBatchEvents (5000)';
    expect(configError(() => resolveServeConfig({ rateLimitKeys: 4999 }))).toContain(few);
    expect(configError(() => resolveServeConfig({ rateLimitKeys: 4999, port: -1 }))).toContain(few);
    expect(
      configError(() => resolveServeConfig({ rateLimitKeys: 199, limits: { maxBatchEvents: 100 } })),
    ).toContain('rateLimitKeys: must be at least twice limits.maxBatchEvents (200)');
    expect(resolveServeConfig({ rateLimitKeys: 200, limits: { maxBatchEvents: 100 } }).rateLimitKeys).toBe(
      200,
    );
  });

  it('reports catalog, key and ClickHouse problems together once the shape is valid', () => {
    const message = configError(() =>
      resolveServeConfig({
        store: 'clickhouse',
        apps: {
          mytool: {
            catalog: { ...mytool, events: { 'bad name\n': { description: 'x' } } },
            writeKeys: ['key-0123456789'],
          },
          other: { catalog: './missing.json', writeKeys: ['key-0123456789'] },
          third: { catalog: { ...mytool, app: 'somebody-else' }, writeKeys: ['key-third-0000'] },
          fourth: { catalog: { ...mytool, app: 'fourth' } },
        },
      }),
    );
    expect(message).toContain('apps.mytool.catalog');
    expect(message).toContain('apps.other.catalog: cannot load');
    expect(message).toContain('register it as apps.somebody-else');
    expect(message).toContain('apps.fourth: give it writeKeys, or set "allowKeyless": true');
    expect(message).toContain('clickhouse.url');
  });

  it('reports what the later checks find beside the schema problems, in one message', () => {
    // Before: a schema problem hid the catalogs', the keys' and the limits' problems, each shown only
    // once the previous stage was fixed.
    const message = configError(() =>
      resolveServeConfig({
        port: 'abc',
        limits: { maxBatchEvents: 5_000 },
        queue: { maxEvents: 100 },
        apps: {
          broken: { catalog: './nope.json', writeKeys: ['key-shared-0000'] },
          other: { catalog: { ...mytool, app: 'other' }, writeKeys: ['key-shared-0000'] },
          nokeys: { catalog: { ...mytool, app: 'nokeys' } },
          badshape: { writeKeys: 'not-a-list' },
        },
      }),
    );
    expect(message).toContain('port');
    expect(message).toContain('apps.badshape.writeKeys');
    expect(message).toContain('apps.broken.catalog: cannot load');
    expect(message).toContain('a write key is also used by app "broken"');
    expect(message).toContain('apps.nokeys: give it writeKeys, or set "allowKeyless": true');
    expect(message).toContain('queue.maxEvents: must be at least limits.maxBatchEvents (5000)');
    // A section the schema refused is reported once, by the schema.
    expect(message.match(/badshape/g)).toHaveLength(1);
  });

  it("reports the ClickHouse store's own option problems with the rest, schema problems or not", () => {
    const clickhouse = { url: 'ftp://127.0.0.1:8123', user: '' };
    const alone = configError(() => resolveServeConfig({ store: 'clickhouse', clickhouse }));
    expect(alone).toContain('clickhouse.url: must be an http(s) URL');
    expect(alone).toContain('clickhouse.user: must not be empty');
    const beside = configError(() => resolveServeConfig({ port: 'abc', store: 'clickhouse', clickhouse }));
    expect(beside).toContain('port');
    expect(beside).toContain('clickhouse.url: must be an http(s) URL');
    // One list, one format.
    const listed = beside.split('\n').filter((line) => /port|clickhouse\./.test(line));
    expect(listed.length).toBeGreaterThanOrEqual(3);
    expect(listed.every((line) => line.startsWith('  - '))).toBe(true);
  });

  it('takes the ClickHouse timeouts, and reports every problem with them at once', () => {
    // Until 2026-11-29 the section refused requestTimeoutMs (and there was no insertTimeoutMs): a collector
    // in front of a server that stops answering held each ingest request for the fixed 60 s.
    const url = 'http://127.0.0.1:8123';
    const given = resolveServeConfig({
      store: 'clickhouse',
      clickhouse: { url, requestTimeoutMs: 120_000, insertTimeoutMs: 2_000 },
    });
    expect(given.clickhouse).toMatchObject({ requestTimeoutMs: 120_000, insertTimeoutMs: 2_000 });
    const ranges = configError(() =>
      resolveServeConfig({
        port: 'abc',
        store: 'clickhouse',
        clickhouse: { url, requestTimeoutMs: 5, insertTimeoutMs: 'soon' as never },
      }),
    );
    expect(ranges).toContain('port');
    expect(ranges).toContain('clickhouse.requestTimeoutMs');
    expect(ranges).toContain('clickhouse.insertTimeoutMs');
    // Each valid alone, not together: found by the store's own check, beside the section's other problems.
    const together = configError(() =>
      resolveServeConfig({
        store: 'clickhouse',
        clickhouse: { url: 'ftp://127.0.0.1:8123', requestTimeoutMs: 3_000, insertTimeoutMs: 4_000 },
      }),
    );
    expect(together).toContain('clickhouse.url: must be an http(s) URL');
    expect(together).toContain(
      'clickhouse.insertTimeoutMs: 4000 ms is longer than clickhouse.requestTimeoutMs (3000 ms), which would end the write first; lower insertTimeoutMs or raise requestTimeoutMs',
    );
  });

  it('refuses credentials inside a ClickHouse URL, and never repeats them', () => {
    const message = configError(() =>
      resolveServeConfig({
        store: 'clickhouse',
        clickhouse: {
          url: 'http://default:s3cret@127.0.0.1:8123',
          cluster: { name: 'c', nodes: ['http://127.0.0.1:8123', 'http://ops:s3cret@127.0.0.2:8123'] },
        },
      }),
    );
    expect(message).toContain('clickhouse.url: must not carry a user or password');
    expect(message).toContain('clickhouse.cluster.nodes.1: must not carry a user or password');
    expect(message).toContain('give clickhouse.user and clickhouse.password');
    expect(message).not.toContain('s3cret');
  });

  it('reports key problems of an app whose catalog fails too', () => {
    const message = configError(() =>
      resolveServeConfig({
        apps: {
          one: { catalog: './nope.json', writeKeys: ['key-shared-0000'] },
          two: { catalog: './nope-either.json', writeKeys: ['key-shared-0000'] },
          three: { catalog: './nope-again.json' },
        },
      }),
    );
    expect(message).toContain('apps.one.catalog: cannot load');
    expect(message).toContain('apps.two.writeKeys: a write key is also used by app "one"');
    expect(message).toContain('apps.three: give it writeKeys, or set "allowKeyless": true');
  });

  it('acknowledges ClickHouse writes after the insert unless the journal is asked for', () => {
    const url = 'http://127.0.0.1:8123';
    expect(resolveServeConfig({ store: 'clickhouse', clickhouse: { url } }).clickhouse?.acknowledge).toBe(
      'insert',
    );
    const journal = resolveServeConfig({ store: 'clickhouse', clickhouse: { url, acknowledge: 'journal' } });
    expect(journal.clickhouse?.acknowledge).toBe('journal');
    const message = configError(() =>
      resolveServeConfig({ store: 'clickhouse', clickhouse: { url, acknowledge: 'later' as never } }),
    );
    expect(message).toContain('clickhouse.acknowledge');
  });

  it('refuses a write key shared by two apps', () => {
    const message = configError(() =>
      resolveServeConfig({
        apps: {
          mytool: { catalog: mytool, writeKeys: ['shared-key-123'] },
          telepresence2: { writeKeys: ['shared-key-123'] },
        },
      }),
    );
    expect(message).toMatch(/a write key is also used by app "(mytool|telepresence2)"; keys must be unique/);
  });

  it('loads catalogs from files relative to the config file, inline, or built in, and freezes the result', () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    writeFileSync(join(dir, 'mytool.json'), JSON.stringify(mytool));
    writeFileSync(
      join(dir, 'telemark.json'),
      JSON.stringify({
        port: 9000,
        data: 'data',
        apps: {
          mytool: {
            catalog: 'mytool.json',
            writeKeys: ['wk_mytool_1'],
            latestVersion: '1.2.3',
            retentionDays: 30,
          },
          inline: { catalog: { ...mytool, app: 'inline' }, allowKeyless: true },
          telepresence2: {
            catalog: 'builtin:telepresence2',
            notices: [{ id: 'n1', text: 'Upgrade!' }],
            disableUntil: '2030-01-01T00:00:00Z',
          },
        },
      }),
    );
    const config = loadServeConfig({
      file: join(dir, 'telemark.json'),
      flags: { port: '9100' },
      cwd: '/elsewhere',
    });
    expect(config.port).toBe(9100);
    expect(config.dataDir).toBe(join(dir, 'data'));
    const app = config.registry.byWriteKey('wk_mytool_1');
    expect(app?.name).toBe('mytool');
    expect(app?.latestVersion).toBe('1.2.3');
    expect(app?.retentionDays).toBe(30);
    expect(config.registry.get('inline')?.allowKeyless).toBe(true);
    expect(config.registry.get('telepresence2')?.disableUntil).toBe('2030-01-01T00:00:00.000Z');
    expect(
      config.registry
        .list()
        .map((a) => a.name)
        .sort(),
    ).toEqual(['inline', 'mytool', 'telepresence2']);
    expect(Object.isFrozen(config)).toBe(true);
    expect(Object.isFrozen(config.limits)).toBe(true);
    expect(Object.isFrozen(config.registry.get('mytool'))).toBe(true);
    // Names that exist on Object.prototype are not apps.
    expect(config.registry.get('constructor')).toBeUndefined();
    expect(config.registry.byWriteKey('__proto__')).toBeUndefined();
  });

  it('accepts the JSON form of a real catalog and can disable the built-in app', () => {
    const config = resolveServeConfig({
      apps: {
        telepresence2: { enabled: false },
        tp2: { catalog: { ...catalogToJSON(telepresence as never), app: 'tp2' }, writeKeys: ['wk_tp2_000'] },
      },
    });
    expect(config.registry.get('telepresence2')).toBeUndefined();
    expect(config.registry.get('tp2')?.catalog.eventNames).toContain('Used legacy syntax');
  });

  it('names the config file when it is not JSON, and a bad --port flag', () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    writeFileSync(join(dir, 'bad.json'), '{ nope');
    expect(configError(() => loadServeConfig({ file: join(dir, 'bad.json') }))).toContain('bad.json');
    expect(configError(() => loadServeConfig({ flags: { port: 'eighty' } }))).toContain('port');
  });

  it('reports a bad file value even when a flag overrides it this time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ port: 'abc', host: 'example.test' }));
    const message = configError(() => loadServeConfig({ file, flags: { port: '8788', host: '127.0.0.1' } }));
    expect(message).toContain(`port (in ${file}, overridden by --port)`);
    expect(message).not.toContain('host');
    writeFileSync(file, JSON.stringify({ port: 8787 }));
    expect(loadServeConfig({ file, flags: { port: '8788' } }).port).toBe(8788);
  });

  it('names an unknown key at its own path, with the key most likely meant', () => {
    const message = configError(() =>
      resolveServeConfig({
        retentionDay: 30,
        prot: 9000,
        surprise: true,
        limits: { maxEventsBytes: 1000, zzz: 1 },
        apps: { mytool: { catalog: mytool, writeKeys: ['wk_mytool_0123456789'], retentionDay: 5 } },
      }),
    );
    const lines = message.split('\n');
    // At the top the nearest key is another level's: a per-app setting.
    expect(lines).toContain('  - retentionDay: unknown key; did you mean apps.<name>.retentionDays?');
    expect(lines).toContain('  - prot: unknown key; did you mean "port"?');
    expect(lines).toContain(
      '  - surprise: unknown key (the settings are listed in docs/collector.md, "Configuration")',
    );
    expect(lines).toContain('  - limits.maxEventsBytes: unknown key; did you mean "maxEventBytes"?');
    expect(lines).toContain(
      '  - limits.zzz: unknown key; known here: maxEventBytes, maxBatchBytes, maxBatchEvents',
    );
    expect(lines).toContain('  - apps.mytool.retentionDay: unknown key; did you mean "retentionDays"?');
    expect(message).not.toContain('(top level)');
  });

  it('names the fix for an app with neither write keys nor keyless', () => {
    expect(configError(() => resolveServeConfig({ apps: { mytool: { catalog: mytool } } }))).toContain(
      'apps.mytool: give it writeKeys, or set "allowKeyless": true',
    );
  });

  it('says where a config file stops being JSON, by line and column, and what JSON does not allow', () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    const problemOf = (name: string, text: string) => {
      const file = join(dir, name);
      writeFileSync(file, text);
      return configError(() => loadServeConfig({ file })).split('\n')[1];
    };
    const file = (name: string) => join(dir, name);
    expect(problemOf('comment.json', '{\n  // the port\n  "port": 9000\n}\n')).toBe(
      `  - --config: ${file('comment.json')}: not valid JSON at line 2, column 3: JSON has no comments; remove it`,
    );
    expect(problemOf('trailing.json', '{\n  "port": 9000,\n  "host": "0.0.0.0",\n}\n')).toBe(
      `  - --config: ${file('trailing.json')}: not valid JSON at line 3, column 20: JSON allows no comma after the last item; remove it`,
    );
    expect(problemOf('quotes.json', "{\n  'port': 9000\n}")).toBe(
      `  - --config: ${file('quotes.json')}: not valid JSON at line 2, column 3: JSON strings and keys take double quotes`,
    );
    expect(problemOf('comma.json', '{\n  "port": 9000\n  "host": "x"\n}')).toBe(
      `  - --config: ${file('comma.json')}: not valid JSON at line 3, column 3: Expected ',' or '}' after property value`,
    );
    // V8's message quotes the text around the error: not repeated, a secret may be there.
    const unquoted = problemOf('secret.json', '{\n  "clickhouse": { "password": hunter2secret }\n}');
    expect(unquoted).toBe(
      `  - --config: ${file('secret.json')}: not valid JSON at line 2, column 31: Unexpected text (a string without its double quotes?)`,
    );
    expect(problemOf('brace.json', '{"port": 9000, "apps": {"x": {"writeKeys": [}}}}')).toBe(
      `  - --config: ${file('brace.json')}: not valid JSON at line 1, column 45: Unexpected token '}'`,
    );
    expect(problemOf('short.json', '{"a": ]}')).toBe(
      `  - --config: ${file('short.json')}: not valid JSON at line 1, column 7: Unexpected token ']'`,
    );
    expect(problemOf('empty.json', '\n')).toBe(
      `  - --config: ${file('empty.json')}: empty; give a JSON object ({} for every default)`,
    );
    expect(problemOf('array.json', '[]')).toBe(
      `  - --config: ${file('array.json')} holds an array; give a JSON object ({ "port": 8787, … })`,
    );
    // An editor's byte-order mark is not an error.
    writeFileSync(file('bom.json'), '\uFEFF{ "port": 9000 }');
    expect(loadServeConfig({ file: file('bom.json') }).port).toBe(9000);
  });

  it("bounds every duration that ends in a Node timer by Node's limit, and retention's interval below", () => {
    // Until 2026-11-29 any positive value passed: past 2,147,483,647 ms Node fires a timer after 1 ms, so a
    // monthly retention ran in a loop, a 35-day shutdown deadline gave up at once, bodies timed out at once.
    const month = 43_200;
    const message = configError(() =>
      resolveServeConfig({
        timeouts: {
          headersMs: 3_000_000_000,
          bodyMs: 3_000_000_000,
          keepAliveMs: 2_147_483_000,
          idleMs: 3_000_000_000,
          shutdownMs: 3_000_000_000,
        },
        retention: { intervalMinutes: month },
      }),
    );
    const lines = message.split('\n');
    for (const key of ['headersMs', 'bodyMs', 'idleMs', 'shutdownMs'])
      expect(lines).toContain(`  - timeouts.${key}: at most 2147483647 ms (Node's timer limit, ~24.8 days)`);
    expect(message).toContain('timeouts.keepAliveMs: at most 2147482647 ms');
    expect(lines).toContain(
      "  - retention.intervalMinutes: at most 35791 minutes (Node's timer limit, ~24.8 days); 0 turns retention's timer off",
    );
    // A fraction of a millisecond ran it back to back too.
    expect(configError(() => resolveServeConfig({ retention: { intervalMinutes: 0.00001 } }))).toContain(
      'retention.intervalMinutes: 0 (off) or at least 0.001 minutes (60 ms)',
    );
    // The limits themselves, off, and what the tests use pass.
    const most = resolveServeConfig({
      timeouts: {
        headersMs: 2_147_483_647,
        bodyMs: 2_147_483_647,
        keepAliveMs: 2_147_482_647,
        idleMs: 2_147_483_647,
        shutdownMs: 2_147_483_647,
      },
      retention: { intervalMinutes: 35_791 },
    });
    expect(most.retention.intervalMinutes * 60_000).toBeLessThanOrEqual(2_147_483_647);
    for (const intervalMinutes of [0, 0.001, 0.002, 60])
      expect(resolveServeConfig({ retention: { intervalMinutes } }).retention.intervalMinutes).toBe(
        intervalMinutes,
      );
  });

  it('checks duckdb.memoryLimit by its size, with the other problems', () => {
    // Until 2026-11-29 only its shape: "0MB" and "1KB" failed at the store's open (Out of Memory Error),
    // "999999999TB" with "Failed to set config", naming no setting.
    for (const small of ['0MB', '1KB', '64MB', '95MB', '90MiB'])
      expect(
        configError(() => resolveServeConfig({ port: -1, duckdb: { memoryLimit: small } })),
        small,
      ).toMatch(/port[\s\S]*duckdb\.memoryLimit: at least 96MB \(what DuckDB needs/);
    for (const large of ['999999999TB', '1000TB'])
      expect(
        configError(() => resolveServeConfig({ duckdb: { memoryLimit: large } })),
        large,
      ).toContain("duckdb.memoryLimit: at most the machine's memory");
    for (const fine of ['96MB', '92MiB', '512MB', '0.5GB', '1 GiB'])
      expect(resolveServeConfig({ duckdb: { memoryLimit: fine } }).duckdb.memoryLimit, fine).toBe(fine);
    expect(memoryLimitBytes('512MB')).toBe(512_000_000);
    expect(memoryLimitBytes('1.5GiB')).toBe(1.5 * 2 ** 30);
    expect(memoryLimitBytes('lots')).toBeUndefined();
    // A bad shape is one problem, not two.
    const shape = configError(() => resolveServeConfig({ duckdb: { memoryLimit: 'lots' } }));
    expect(shape.match(/duckdb\.memoryLimit/g)).toHaveLength(1);
  });

  it('reports a bad clickhouse section of the file that --clickhouse-* flags replace this time', () => {
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    const file = join(dir, 'config.json');
    const flags = { store: 'clickhouse', clickhouseUrl: 'http://127.0.0.1:1', clickhouseUser: 'u' };
    // Until 2026-11-29 both started: the section (or its overridden values) was dropped without a word.
    writeFileSync(file, JSON.stringify({ clickhouse: 'oops' }));
    expect(configError(() => loadServeConfig({ file, flags }))).toContain(
      `clickhouse (in ${file}, replaced by --clickhouse-url, --clickhouse-user): Invalid input: expected object, received string`,
    );
    writeFileSync(file, JSON.stringify({ clickhouse: { url: 5, user: 7, database: 'ok_db' } }));
    const lines = configError(() => loadServeConfig({ file, flags })).split('\n');
    expect(lines).toContain(
      `  - clickhouse.url (in ${file}, overridden by --clickhouse-url): Invalid input: expected string, received number`,
    );
    expect(lines).toContain(
      `  - clickhouse.user (in ${file}, overridden by --clickhouse-user): Invalid input: expected string, received number`,
    );
    // Good values overridden, and a section the flags do not touch, are not problems.
    writeFileSync(file, JSON.stringify({ clickhouse: { url: 'http://127.0.0.1:8123', database: 'ok_db' } }));
    const config = loadServeConfig({ file, flags });
    expect(config.clickhouse).toMatchObject({ url: 'http://127.0.0.1:1', user: 'u', database: 'ok_db' });
  });

  it('refuses --clickhouse-* flags when the store is DuckDB, but not a file section kept for switching', () => {
    // Until 2026-11-29 `serve --clickhouse-url … --clickhouse-database prod` started on DuckDB, silently.
    const url = 'http://127.0.0.1:8123';
    expect(
      configError(() => loadServeConfig({ flags: { clickhouseUrl: url, clickhouseDatabase: 'prod' } })),
    ).toContain(
      '--clickhouse-url, --clickhouse-database: ClickHouse settings, but the store is "duckdb" (the default); add --store clickhouse, or leave them out',
    );
    expect(configError(() => loadServeConfig({ flags: { store: 'duckdb', clickhouseUser: 'u' } }))).toContain(
      '--clickhouse-user: ClickHouse settings, but the store is "duckdb" (--store)',
    );
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, JSON.stringify({ store: 'duckdb', clickhouse: { url } }));
    expect(configError(() => loadServeConfig({ file, flags: { clickhouseUrl: url } }))).toContain(
      `but the store is "duckdb" ("store" in ${file})`,
    );
    // The file's section alone, and the password (TELEMARK_CLICKHOUSE_PASSWORD stands in for its flag).
    expect(loadServeConfig({ file }).store).toBe('duckdb');
    expect(loadServeConfig({ flags: { clickhousePassword: 'secret' } }).store).toBe('duckdb');
    expect(loadServeConfig({ flags: { store: 'clickhouse', clickhouseUrl: url } }).clickhouse?.url).toBe(url);
  });

  it('reports an app named "__proto__", with its own problems and the others', () => {
    // JSON.parse makes "__proto__" an own key, which zod's record skips: until 2026-11-29 this started.
    const dir = mkdtempSync(join(tmpdir(), 'telemark-'));
    const file = join(dir, 'config.json');
    writeFileSync(file, '{"apps":{"__proto__":{"catalog":{"app":"x"},"writeKeys":["short"],"bogus":1}}}');
    const alone = configError(() => loadServeConfig({ file }));
    expect(alone).toContain('apps.__proto__: app names are 1–64 letters');
    expect(alone).toContain('apps.__proto__.writeKeys.0: write keys have at least 8 characters');
    expect(alone).toContain('apps.__proto__.bogus: unknown key');
    // Beside another schema problem, and valid in shape: then its catalog's problem is reported too.
    writeFileSync(
      file,
      JSON.stringify({ port: 'abc' }).replace(
        '}',
        `,"apps":{"__proto__":{"catalog":${JSON.stringify(mytool)},"writeKeys":["wk_proto_0123"]}}}`,
      ),
    );
    const beside = configError(() => loadServeConfig({ file }));
    expect(beside).toContain('port');
    expect(beside).toContain('apps.__proto__: app names are 1–64 letters');
    expect(beside).toContain('apps.__proto__.catalog: the catalog is for app "mytool"');
    const valid = JSON.parse(
      `{"apps":{"__proto__":{"catalog":${JSON.stringify(mytool)},"writeKeys":["wk_proto_0123"]}}}`,
    );
    expect(configError(() => resolveServeConfig(valid))).toContain('apps.__proto__: app names are');
    // Other names of Object.prototype's keys are apps like any other.
    const named = resolveServeConfig({
      apps: { constructor: { catalog: { ...mytool, app: 'constructor' }, writeKeys: ['wk_ctor_0123'] } },
    });
    expect(named.registry.get('constructor')?.name).toBe('constructor');
  });
});
