import { describe, expect, it } from 'vitest';
import { VigilError } from '../errors.ts';
import { silentLogger } from '../log.ts';
import { PipelineMetrics } from '../metrics.ts';
import { backoffMs, dependencyOf, isTransient, rideThrough } from './ride-through.ts';

/** What librdkafka's calls throw unwrapped (e.g. commitSync with the broker gone). */
class LibrdKafkaError extends Error {
  readonly origin = 'local';
  constructor(
    readonly code: number,
    readonly isFatal = false,
  ) {
    super(`librdkafka ${code}`);
  }
}

describe('ride-through', () => {
  it('maps failures to a dependency from a fixed set, and rides through only transient ones', () => {
    expect(dependencyOf(new VigilError('KAFKA_UNAVAILABLE', 'x'))).toBe('kafka');
    expect(dependencyOf(new VigilError('REGISTRY_UNAVAILABLE', 'x'))).toBe('schema_registry');
    expect(dependencyOf(new VigilError('CLICKHOUSE_UNAVAILABLE', 'x'))).toBe('clickhouse');
    expect(dependencyOf(new LibrdKafkaError(-195))).toBe('kafka');
    expect(dependencyOf(new Error('bug'))).toBeNull();
    expect(isTransient(new VigilError('REGISTRY_UNAVAILABLE', 'x'))).toBe(true);
    expect(isTransient(new VigilError('KAFKA_FENCED', 'x'))).toBe(false);
    expect(isTransient(new VigilError('INTERNAL', 'x'))).toBe(false);
    expect(isTransient(new LibrdKafkaError(-195))).toBe(true);
    expect(isTransient(new LibrdKafkaError(-150, true))).toBe(false);
    expect(isTransient(new Error('bug'))).toBe(false);
    expect([0, 1, 2, 6, 7, 40].map((a) => backoffMs(a))).toEqual([500, 1000, 2000, 30_000, 30_000, 30_000]);
  });

  it('restarts after transient failures with backoff, counts them, and ends the outage at the first progress', async () => {
    const metrics = new PipelineMetrics();
    const waits: number[] = [];
    let clock = 1_000;
    const failures = [new VigilError('REGISTRY_UNAVAILABLE', 'down'), new LibrdKafkaError(-195)];
    const result = await rideThrough(
      async (progressed) => {
        const failure = failures.shift();
        if (failure) throw failure;
        clock += 250;
        progressed();
        return 'done';
      },
      {
        what: 'test',
        log: silentLogger,
        metrics,
        uses: ['kafka', 'schema_registry'],
        stopRequested: () => false,
        now: () => clock,
        sleep: async (ms) => {
          waits.push(ms);
          clock += ms;
        },
      },
    );
    expect(result).toEqual(['done']);
    expect(waits).toEqual([500, 1000]);
    const body = await metrics.expose();
    expect(body).toContain('vigil_dependency_retries_total{dependency="schema_registry"} 1');
    expect(body).toContain('vigil_dependency_retries_total{dependency="kafka"} 1');
    expect(body).toContain('vigil_dependency_up{dependency="schema_registry"} 1');
    expect(body).toContain('vigil_dependency_up{dependency="kafka"} 1');
  });

  it('stops on a non-transient failure, and does not restart once asked to stop', async () => {
    const options = {
      what: 'test',
      log: silentLogger,
      metrics: new PipelineMetrics(),
      uses: [],
      sleep: async () => {},
    } as const;
    await expect(
      rideThrough(
        async () => {
          throw new VigilError('CONFIG_INVALID', 'bad');
        },
        { ...options, stopRequested: () => false },
      ),
    ).rejects.toThrow('bad');
    let calls = 0;
    let stop = false;
    const out = await rideThrough(
      async () => {
        calls++;
        throw new VigilError('KAFKA_UNAVAILABLE', 'down');
      },
      {
        ...options,
        stopRequested: () => stop,
        sleep: async () => {
          stop = true; // SIGTERM during the backoff
        },
      },
    );
    expect(out).toEqual([]);
    expect(calls).toBe(1);
  });
});
