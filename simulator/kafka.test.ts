/**
 * The simulation's outcomes as `vigil simulate --kafka` sends them to the outcomes topic (no broker: the framing and
 * keys): each a Confluent frame of the newest outcome schema that decodes to the ground truth of ./outcomes.ts, keyed
 * by the patient pseudonym its envelopes carry, the same bytes for the same seed.
 */
import { describe, expect, it } from 'vitest';
import { FRAME_HEADER_SIZE, frameSchemaId } from '../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import { framedOutcomes, simulationOutcomes } from './kafka.ts';
import { simulateFleet } from './simulate.ts';

const OPTIONS = { devices: 300, events: 30_000, seed: 11 };

describe('simulation outcomes for the outcomes topic', () => {
  it('frames each ground-truth outcome with the outcome schema, keyed by the patient pseudonym', () => {
    const outcomes = simulationOutcomes(OPTIONS);
    expect(outcomes.length).toBeGreaterThan(5);
    const framed = framedOutcomes(outcomes, 42);
    const type = loadSchemaRepo().get('outcome').newest.type;
    expect(framed.map((r) => r.key)).toEqual(outcomes.map((o) => o.patient_ref));
    for (const [i, record] of framed.entries()) {
      expect(frameSchemaId(record.value)).toBe(42);
      expect(type.fromBuffer(record.value.subarray(FRAME_HEADER_SIZE))).toEqual(outcomes[i]);
    }
    // The same seed, the same bytes.
    expect(framedOutcomes(simulationOutcomes(OPTIONS), 42)).toEqual(framed);
  });

  it("names the patients the simulated envelopes carry, within the run's time", () => {
    const outcomes = simulationOutcomes(OPTIONS);
    const patients = new Set<string>();
    let first = Number.POSITIVE_INFINITY;
    let last = 0;
    for (const record of simulateFleet(OPTIONS)) {
      if (record.kind !== 'envelope') continue;
      patients.add(record.envelope.patient_ref);
      first = Math.min(first, record.envelope.observed_at);
      last = Math.max(last, record.envelope.observed_at);
    }
    for (const o of outcomes) {
      expect(patients.has(o.patient_ref)).toBe(true);
      expect(o.occurred_at).toBeGreaterThanOrEqual(first - 60 * 60_000);
      expect(o.occurred_at).toBeLessThanOrEqual(last + 60 * 60_000);
    }
  });
});
