import net from 'node:net';
import { ClickHouseLogLevel, createClient } from '@clickhouse/client';
import { describe, expect, it } from 'vitest';
import type { StoreLogger } from '../types.js';
import { CLIENT_COMPONENT, clientLoggerClass, clientLogLevel } from './log.js';

type Level = 'trace' | 'debug' | 'info' | 'warn' | 'error';

function recorder(level?: string) {
  const lines: { level: Level; fields: Record<string, unknown>; message: string }[] = [];
  const at =
    (name: Level) =>
    (fields: object, message: string): void => {
      lines.push({ level: name, fields: fields as Record<string, unknown>, message });
    };
  const log: StoreLogger = {
    ...(level ? { level } : {}),
    trace: at('trace'),
    debug: at('debug'),
    info: at('info'),
    warn: at('warn'),
    error: at('error'),
  };
  return { log, lines };
}

describe("@clickhouse/client's messages through the store's logger", () => {
  it('keeps their level and adds the component; request errors, which the store reports itself, at debug', () => {
    const { log, lines } = recorder();
    const logger = new (clientLoggerClass(log))();
    const err = new Error('boom');
    logger.warn({ module: 'HTTP Adapter', message: 'idle socket TTL is greater', args: { socket_id: 1 } });
    logger.error({ module: 'Connection', message: 'Query: HTTP request error. Timeout error.', err });
    logger.error({
      module: 'Compression',
      message: 'An error occurred while decompressing the response',
      err,
    });
    logger.info({ module: 'Connection', message: 'Log level is set to DEBUG' });
    logger.trace({ module: 'Connection', message: 't' });
    expect(lines).toEqual([
      {
        level: 'warn',
        fields: { component: CLIENT_COMPONENT, module: 'HTTP Adapter', args: { socket_id: 1 } },
        message: 'idle socket TTL is greater',
      },
      {
        level: 'debug',
        fields: { component: CLIENT_COMPONENT, module: 'Connection', err },
        message: 'Query: HTTP request error. Timeout error.',
      },
      {
        level: 'error',
        fields: { component: CLIENT_COMPONENT, module: 'Compression', err },
        message: 'An error occurred while decompressing the response',
      },
      {
        level: 'info',
        fields: { component: CLIENT_COMPONENT, module: 'Connection' },
        message: 'Log level is set to DEBUG',
      },
      { level: 'trace', fields: { component: CLIENT_COMPONENT, module: 'Connection' }, message: 't' },
    ]);
  });

  it("asks the client for as much as the logger's level shows, and nothing without a logger", () => {
    expect(clientLogLevel(undefined)).toBe('OFF');
    expect(clientLogLevel('trace')).toBe('TRACE');
    expect(clientLogLevel('debug')).toBe('DEBUG');
    for (const level of ['info', 'warn', 'error', 'fatal', 'silent'])
      expect(clientLogLevel(level)).toBe('WARN');
  });

  it('receives what the real client logs about a refused request, and nothing reaches the console', async () => {
    const server = net.createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as net.AddressInfo;
    await new Promise<void>((resolve) => server.close(() => resolve()));

    const { log, lines } = recorder('info');
    const printed: unknown[] = [];
    const saved = { ...console };
    for (const name of ['log', 'info', 'warn', 'error', 'debug', 'trace'] as const)
      console[name] = (...args: unknown[]) => printed.push(args);
    try {
      const client = createClient({
        url: `http://127.0.0.1:${port}`,
        log: { level: ClickHouseLogLevel[clientLogLevel(log.level)], LoggerClass: clientLoggerClass(log) },
      });
      await expect(client.query({ query: 'SELECT 1', format: 'JSONEachRow' })).rejects.toThrow(
        /ECONNREFUSED/,
      );
      await client.close();
    } finally {
      Object.assign(console, saved);
    }
    expect(printed).toEqual([]);
    expect(lines).toContainEqual(
      expect.objectContaining({
        level: 'debug',
        fields: expect.objectContaining({ component: CLIENT_COMPONENT, err: expect.any(Error) }),
        message: expect.stringMatching(/HTTP request error/),
      }),
    );
  });
});
