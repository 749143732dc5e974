import path from 'node:path';
import { describe, expect, it, vi } from 'vitest';
import { LOCAL_PORTS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { parsePortOffset, REPO_DIR, stackConfig } from './config.ts';

describe('stackConfig', () => {
  it('defaults to the repo .vigil/stack on the fixed local ports, nothing external', () => {
    const config = stackConfig({});
    expect(config.stackDir).toBe(path.join(REPO_DIR, '.vigil', 'stack'));
    expect(config.logDir).toBe(path.join(config.stackDir, 'logs'));
    expect(config.ports.kafka).toBe(LOCAL_PORTS.kafka);
    expect(config.endpoints.kafka).toBe(`127.0.0.1:${LOCAL_PORTS.kafka}`);
    expect(config.endpoints.apicurio).toBe(`http://127.0.0.1:${LOCAL_PORTS.schemaRegistry}/apis/ccompat/v7`);
    expect(Object.values(config.external)).toEqual([false, false, false, false]);
  });

  it('an endpoint variable makes that one service external and keeps the others local', () => {
    const config = stackConfig({ REDIS_URL: 'redis://staging:6379', KAFKA_BROKERS: ' ' });
    expect(config.external.redis).toBe(true);
    expect(config.endpoints.redis).toBe('redis://staging:6379');
    expect(config.external.kafka).toBe(false);
    expect(config.external['clickhouse-server']).toBe(false);
  });

  it('VIGIL_STACK_DIR and VIGIL_STACK_PORT_OFFSET give an isolated instance', () => {
    const config = stackConfig({ VIGIL_STACK_DIR: '/tmp/other-stack', VIGIL_STACK_PORT_OFFSET: '100' });
    expect(config.stackDir).toBe('/tmp/other-stack');
    expect(config.runDir).toBe('/tmp/other-stack/run');
    expect(config.ports.redis).toBe(LOCAL_PORTS.redis + 100);
    expect(config.ports.clickhouseNative).toBe(LOCAL_PORTS.clickhouseNative + 100);
    expect(config.endpoints.redis).toBe(`redis://127.0.0.1:${LOCAL_PORTS.redis + 100}`);
  });

  it("an explicit env is the whole truth: the process's own VIGIL_STACK_PORT_OFFSET does not leak in", () => {
    vi.stubEnv('VIGIL_STACK_PORT_OFFSET', '300');
    try {
      expect(stackConfig({}).ports.redis).toBe(LOCAL_PORTS.redis);
      expect(parsePortOffset(undefined)).toBe(0);
      expect(stackConfig().ports.redis).toBe(LOCAL_PORTS.redis + 300);
    } finally {
      vi.unstubAllEnvs();
    }
  });

  it('rejects an offset that is not a sane integer', () => {
    expect(parsePortOffset(undefined)).toBe(0);
    expect(parsePortOffset('-5')).toBe(-5);
    for (const bad of ['1.5', 'abc', '50000']) expect(() => parsePortOffset(bad)).toThrow(VigilError);
  });
});
