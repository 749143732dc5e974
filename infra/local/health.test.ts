import { describe, expect, it } from 'vitest';
import { parseBrokers, splitCredentials } from './health.ts';
import { redact } from './stack.ts';

describe('endpoint parsing for the probes', () => {
  it('reads bootstrap lists, with or without a scheme, IPv6 in brackets', () => {
    expect(parseBrokers('127.0.0.1:19092')).toEqual([{ host: '127.0.0.1', port: 19092 }]);
    expect(parseBrokers(' a:9092, PLAINTEXT://b:9093 ,[::1]:9094,')).toEqual([
      { host: 'a', port: 9092 },
      { host: 'b', port: 9093 },
      { host: '::1', port: 9094 },
    ]);
    expect(parseBrokers('no-port,:9092')).toEqual([]);
  });

  it('moves URL credentials into a Basic header (fetch refuses them in the URL)', () => {
    expect(splitCredentials('http://127.0.0.1:18081/apis/ccompat/v7')).toEqual({
      url: 'http://127.0.0.1:18081/apis/ccompat/v7',
      headers: {},
    });
    const split = splitCredentials('https://svc%40team:p%3Ass@registry.example/apis/ccompat/v7');
    expect(split.url).toBe('https://registry.example/apis/ccompat/v7');
    expect(Buffer.from(split.headers.authorization!.replace('Basic ', ''), 'base64').toString()).toBe('svc@team:p:ss');
  });

  it('never prints credentials of an external endpoint', () => {
    expect(redact('redis://:secret@staging:6379')).toBe('redis://***@staging:6379');
    expect(redact('http://u:p@h/apis')).toBe('http://***@h/apis');
    expect(redact('127.0.0.1:19092')).toBe('127.0.0.1:19092');
  });
});
