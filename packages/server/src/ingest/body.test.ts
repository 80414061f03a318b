import http, { type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import { gzipSync } from 'node:zlib';
import { describe, expect, it } from 'vitest';
import { notesOf } from '../errors.js';
import { decodeBody, decodeBodySync, parseJsonBody, readableOfBadGzip, readBody } from './body.js';

function fakeRequest(headers: Record<string, string> = {}) {
  const stream = new PassThrough() as unknown as IncomingMessage & PassThrough;
  (stream as { headers: Record<string, string> }).headers = headers;
  return stream;
}

describe('request bodies', () => {
  it('reads a body in chunks', async () => {
    const request = fakeRequest();
    const body = readBody(request, { maxBytes: 100, timeoutMs: 1000 });
    request.write('{"a":');
    request.end('1}');
    expect((await body).toString()).toBe('{"a":1}');
  });

  it('refuses a declared or streamed body over the limit without reading the rest', async () => {
    await expect(
      readBody(fakeRequest({ 'content-length': '101' }), { maxBytes: 100, timeoutMs: 1000 }),
    ).rejects.toMatchObject({
      code: 'TMK_ERR_BODY_TOO_LARGE',
    });
    const request = fakeRequest();
    const body = readBody(request, { maxBytes: 100, timeoutMs: 1000 });
    request.write(Buffer.alloc(60));
    request.write(Buffer.alloc(60));
    await expect(body).rejects.toMatchObject({ code: 'TMK_ERR_BODY_TOO_LARGE' });
  });

  it('takes a body that has all arrived at once, without waiting for the stream; over the limit it refuses', async () => {
    const server = http.createServer(async (request, response) => {
      // The body came in the request's one write: wait until the parser has it all, reading nothing.
      while (!request.complete) await new Promise((resolve) => setTimeout(resolve, 5));
      const read = readBody(request, { maxBytes: 100, timeoutMs: 10_000 });
      // Settled at once, or not: a body read from the stream's events loses this race.
      const pending = Symbol('pending');
      const first = await Promise.race([read, Promise.resolve(pending)]).catch(() => 'refused');
      const outcome = await read.then(
        (body) => `read ${body.toString()}`,
        (error: { code?: string }) => `refused ${error.code}`,
      );
      response.end(`${first === pending ? 'later' : 'at once'}: ${outcome}`);
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const post = (body: string, headers: Record<string, string> = {}) =>
      new Promise<string>((resolve, reject) => {
        const request = http.request({ port, host: '127.0.0.1', method: 'POST', headers }, (response) => {
          let text = '';
          response.on('data', (chunk) => (text += chunk));
          response.on('end', () => resolve(text));
        });
        request.on('error', reject);
        request.end(body);
      });
    try {
      expect(await post('{"a":1}')).toBe('at once: read {"a":1}');
      // No declared length, so only the bytes tell: the stream's path refuses it as it did before.
      expect(await post('x'.repeat(150), { 'transfer-encoding': 'chunked' })).toBe(
        'later: refused TMK_ERR_BODY_TOO_LARGE',
      );
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  it('times out a body that stops arriving', async () => {
    const request = fakeRequest();
    const body = readBody(request, { maxBytes: 100, timeoutMs: 50 });
    request.write('{"a":');
    await expect(body).rejects.toMatchObject({ code: 'TMK_ERR_BODY_TIMEOUT' });
  });

  // The same rules on the request thread (zlib on the thread pool) and in an ingest worker (blocking).
  const decoders = {
    decodeBody,
    decodeBodySync: async (body: Buffer, encoding: string | undefined, maxBytes: number) =>
      decodeBodySync(body, encoding, maxBytes),
  };
  it.each(Object.entries(decoders))(
    '%s decompresses gzip, caps its output (gzip bombs) and refuses other encodings and bad gzip',
    async (_name, decode) => {
      const json = Buffer.from(JSON.stringify({ batch: [] }));
      expect((await decode(gzipSync(json), 'gzip', 1000)).equals(json)).toBe(true);
      expect((await decode(json, undefined, 1000)).equals(json)).toBe(true);
      expect((await decode(json, 'identity', 1000)).equals(json)).toBe(true);
      const bomb = gzipSync(Buffer.alloc(50 * 1024 * 1024));
      expect(bomb.length).toBeLessThan(100_000);
      await expect(decode(bomb, 'gzip', 500 * 1024)).rejects.toMatchObject({
        code: 'TMK_ERR_BODY_TOO_LARGE',
      });
      const badGzip = await decode(json, 'gzip', 1000).catch((error: unknown) => error);
      expect(badGzip).toMatchObject({ code: 'TMK_ERR_BAD_GZIP' });
      // Nothing to keep is attached here: the caller keeps it scrubbed (keptBadGzip).
      expect(notesOf(badGzip).keptRaw).toBeUndefined();
      await expect(decode(gzipSync(json).subarray(0, 12), 'gzip', 1000)).rejects.toMatchObject({
        code: 'TMK_ERR_BAD_GZIP',
      });
      await expect(decode(json, 'br', 1000)).rejects.toMatchObject({
        code: 'TMK_ERR_UNSUPPORTED_ENCODING',
      });
    },
  );

  it('parses JSON with a byte-order mark and refuses anything else as unparseable', () => {
    expect(parseJsonBody(Buffer.from('\ufeff{"x":1}'))).toEqual({ x: 1 });
    for (const bad of ['', '{', '{"a":1}}', "{'a':1}", '\u0000'])
      expect(() => parseJsonBody(Buffer.from(bad))).toThrow(
        expect.objectContaining({ code: 'TMK_ERR_BODY_UNPARSEABLE' }),
      );
    // Deep nesting parses (V8's parser is not recursive) and is dealt with by the message checks.
    expect(() => parseJsonBody(Buffer.from(`${'['.repeat(100_000)}${']'.repeat(100_000)}`))).not.toThrow();
  });
});

describe('readableOfBadGzip', () => {
  const json = Buffer.from(JSON.stringify({ batch: [{ event: 'run', userId: 'jdoe@example.com' }] }));
  it('is the body itself when it is not gzip at all, at most maxBytes of it', () => {
    expect(readableOfBadGzip(json, 1000).equals(json)).toBe(true);
    expect(readableOfBadGzip(json, 10).equals(json.subarray(0, 10))).toBe(true);
  });
  it('is what inflates of a truncated gzip body, and empty when nothing does', () => {
    const gz = gzipSync(json);
    const start = readableOfBadGzip(gz.subarray(0, gz.length - 6), 1000).toString();
    expect(json.toString().startsWith(start) && start.length > 20).toBe(true);
    expect(readableOfBadGzip(Buffer.from([0x1f, 0x8b, 0, 0, 0]), 1000)).toHaveLength(0);
  });
});
