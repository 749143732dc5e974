import { describe, expect, it } from 'vitest';
import { TOPICS } from '../../runtime/endpoints.ts';
import { TOPIC_LIST, TOPIC_SPECS } from './topics.ts';

describe('TOPIC_SPECS', () => {
  it('declares every topic of runtime/endpoints.ts under its own key and name', () => {
    expect(Object.keys(TOPIC_SPECS).sort()).toEqual(Object.keys(TOPICS).sort());
    for (const [key, spec] of Object.entries(TOPIC_SPECS)) expect(spec.name).toBe(TOPICS[key as keyof typeof TOPICS]);
    expect(new Set(TOPIC_LIST.map((t) => t.name)).size).toBe(TOPIC_LIST.length);
  });

  it('gives explicit partitions and a cleanup policy to each topic; control topics are compacted', () => {
    for (const spec of TOPIC_LIST) {
      expect(Number.isInteger(spec.partitions) && spec.partitions > 0, spec.name).toBe(true);
      expect(['delete', 'compact'], spec.name).toContain(spec.config['cleanup.policy']);
      for (const value of Object.values(spec.config)) expect(typeof value).toBe('string');
    }
    expect(TOPIC_SPECS.modelRollouts.config['cleanup.policy']).toBe('compact');
    expect(TOPIC_SPECS.deviceIdentity.config['cleanup.policy']).toBe('compact');
    expect(TOPIC_SPECS.modelRollouts.partitions).toBe(1);
    expect(TOPIC_SPECS.raw.partitions).toBe(6);
    expect(TOPIC_SPECS.clinicalAlerts.partitions).toBe(3);
    // The dead-letter topic keeps records long enough to investigate and replay.
    expect(Number(TOPIC_SPECS.deadLetter.config['retention.ms'])).toBeGreaterThanOrEqual(30 * 24 * 3600 * 1000);
  });
});
