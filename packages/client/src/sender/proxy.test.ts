import { describe, expect, it } from 'vitest';
import { bypassesProxy, proxyFor } from './proxy.js';

const url = (s: string) => new URL(s);

describe('proxy selection', () => {
  it('uses https_proxy for https and http_proxy for http, lower case first', () => {
    const env = {
      HTTPS_PROXY: 'http://upper:3128',
      https_proxy: 'http://lower:3128',
      HTTP_PROXY: 'proxy:8080',
    };
    expect(proxyFor(url('https://t.example.com'), env)?.host).toBe('lower:3128');
    expect(proxyFor(url('http://t.example.com'), env)?.href).toBe('http://proxy:8080/');
    expect(proxyFor(url('http://t.example.com'), {})).toBeUndefined();
  });
  it('honours NO_PROXY', () => {
    const target = url('https://telemetry.example.com:8443/x');
    expect(bypassesProxy(target, '*')).toBe(true);
    expect(bypassesProxy(target, 'example.com')).toBe(true);
    expect(bypassesProxy(target, '.example.com')).toBe(true);
    expect(bypassesProxy(target, '*.example.com')).toBe(true);
    expect(bypassesProxy(target, 'other.com, example.com:8443')).toBe(true);
    expect(bypassesProxy(target, 'example.com:443')).toBe(false);
    expect(bypassesProxy(target, 'ample.com')).toBe(false);
    expect(bypassesProxy(url('http://127.0.0.1:8787'), 'localhost,127.0.0.1')).toBe(true);
    expect(bypassesProxy(url('http://[::1]:8787'), '::1')).toBe(true);
    expect(bypassesProxy(url('http://[::1]:8787'), '[::1]:8787')).toBe(true);
    expect(proxyFor(target, { https_proxy: 'http://p:1', NO_PROXY: 'example.com' })).toBeUndefined();
  });
});
