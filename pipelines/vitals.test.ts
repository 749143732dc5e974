/**
 * Behaviour test of the vitals pipeline without a broker or a database (Kafka Streams' TopologyTestDriver style):
 * simulated batches in, outputs asserted against the simulator's ground truth.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../adapters/onnx/index.ts';
import type { ScoredEvent } from '../operators/types.ts';
import { systemClock } from '../runtime/clock.ts';
import { addOutcome, balanced, Engine, emptyAccounting } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { PipelineMetrics } from '../runtime/metrics.ts';
import { materialise } from '../runtime/outputs.ts';
import { simulatorSource } from '../runtime/runners/embedded-sources.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { payloadOf } from '../schemas/types.ts';
import type { TruthSummary } from '../simulator/simulate.ts';
import vitals from './vitals.ts';

describe('pipelines/vitals.ts', () => {
  it('routes every simulated record where the ground truth says, with provenance on every output', async () => {
    const engine = new Engine(vitals, new PipelineMetrics());
    await engine.open({
      pipeline: 'vitals',
      clock: systemClock,
      state: new MemoryStateBackend({ clock: systemClock }),
      log: silentLogger,
      models: new OnnxModelStore(),
    });
    let truth: TruthSummary | null = null;
    const total = emptyAccounting();
    const reasons: Record<string, number> = {};
    let inferences = 0;
    let completeVitals = 0;
    let driftRows = 0;
    for await (const batch of simulatorSource({
      simulation: { devices: 200, events: 6000, seed: 'behaviour' },
      batchSize: 500,
      clock: systemClock,
      onTruth: (t) => {
        truth = t;
      },
    })) {
      const outcome = await engine.process(batch);
      addOutcome(total, outcome);
      for (const r of outcome.rejected) reasons[r.code] = (reasons[r.code] ?? 0) + 1;
      for (const record of outcome.completed as readonly { value: ScoredEvent }[]) {
        const payload = payloadOf(record.value.envelope.payload);
        if (payload?.type === 'vital_signs' && Object.values(payload.data).every((v) => v !== null)) completeVitals++;
        if (record.value.inference) {
          inferences++;
          expect(record.value.inference.event_id).toBe(record.value.envelope.event_id);
          expect(record.value.inference.model_artifact_sha256).toMatch(/^[0-9a-f]{64}$/);
        } else if (payload?.type === 'vital_signs') {
          expect(record.value.flags).toContain('news2_incomplete');
        }
      }
      const emitted = materialise(vitals, outcome, 0);
      const normalised = emitted.outputs.find((o) => o.name === 'normalised');
      expect(normalised?.values).toHaveLength(outcome.completed.length);
      for (const v of normalised?.values ?? []) {
        expect(v.value.raw_sha256).toMatch(/^[0-9a-f]{64}$/);
        expect(v.value.transformation_version).toBe('vitals@1/validate/dedupe');
      }
      expect(emitted.deadLetters).toHaveLength(outcome.rejected.length);
      expect(emitted.raw).toHaveLength(batch.origins.length);
      driftRows += emitted.outputs.find((o) => o.name === 'driftHistograms')?.values.length ?? 0;
    }
    await engine.close();
    const t = truth as TruthSummary | null;
    if (!t) throw new Error('the simulator reported no truth');
    expect(balanced(total)).toBe(true);
    expect(total.consumed).toBe(t.records);
    expect(total.emitted).toBe(t.valid);
    expect(total.duplicates).toBe(t.duplicates + t.replays);
    expect(reasons).toEqual(t.deadLetters);
    expect(inferences).toBe(completeVitals);
    expect(inferences).toBeGreaterThan(1000);
    expect(driftRows).toBeGreaterThan(0);
  }, 60_000);
});
