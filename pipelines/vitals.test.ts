/**
 * Behaviour test of the vitals pipeline without a broker or a database (Kafka Streams' TopologyTestDriver style):
 * simulated batches in, outputs asserted against the simulator's ground truth (the simulator's records do not come
 * through a gateway: the chain as `--accept-ungated` runs it); and gateway-shaped records on both lanes (raw and the
 * alarm lane) through the chain as it is defined, requiring gateway provenance.
 */
import { describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../adapters/onnx/index.ts';
import type { ScoredEvent } from '../operators/types.ts';
import { systemClock } from '../runtime/clock.ts';
import { TOPICS } from '../runtime/endpoints.ts';
import { addOutcome, balanced, Engine, emptyAccounting, type SourceBatch } from '../runtime/engine.ts';
import { silentLogger } from '../runtime/log.ts';
import { PipelineMetrics } from '../runtime/metrics.ts';
import { materialise } from '../runtime/outputs.ts';
import type { InFlight, Origin } from '../runtime/record.ts';
import { simulatorSource } from '../runtime/runners/embedded-sources.ts';
import { acceptUngated } from '../runtime/runners/ungated.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { type Alarm, type Envelope, type Inference, payloadOf, wrapPayload } from '../schemas/types.ts';
import type { TruthSummary } from '../simulator/simulate.ts';
import { envelope, T0, ulidFor } from '../test/fixtures/envelope.ts';
import { gatewayEnvelope } from '../test/fixtures/gateway-event.ts';
import gated from './vitals.ts';

/** The one inference `model` made for a record. */
function only(value: ScoredEvent, model: string): Inference {
  const made = value.inferences.filter((i) => i.model_name === model);
  expect(made).toHaveLength(1);
  return made[0]!;
}

/** The simulator's records are not gateway traffic. */
const vitals = acceptUngated(gated);

async function openEngine(definition: typeof gated): Promise<Engine<unknown, unknown>> {
  const engine = new Engine(definition, new PipelineMetrics());
  await engine.open({
    pipeline: 'vitals',
    clock: systemClock,
    state: new MemoryStateBackend({ clock: systemClock }),
    log: silentLogger,
    models: new OnnxModelStore(),
  });
  return engine;
}

/** One source batch of envelopes on a topic's partition 0, from `first` on. */
function laneBatch(topic: string, envelopes: readonly Envelope[], first = 0): SourceBatch<unknown> {
  const records: InFlight<unknown>[] = envelopes.map((value, i) => {
    const origin: Origin = {
      topic,
      partition: 0,
      offset: first + i,
      consumedAt: T0 + 1_000,
      rawSha256: `${i}`.padStart(64, '0'),
      raw: Buffer.alloc(0),
      headers: [],
      key: value.device_id,
    };
    return { value, origin };
  });
  return {
    range: { topic, partition: 0, firstOffset: first, lastOffset: first + envelopes.length - 1 },
    origins: records.map((r) => r.origin),
    records,
    rejected: [],
  };
}

describe('pipelines/vitals.ts', () => {
  it('routes every simulated record where the ground truth says, with provenance on every output', async () => {
    const engine = await openEngine(vitals);
    let truth: TruthSummary | null = null;
    const total = emptyAccounting();
    const reasons: Record<string, number> = {};
    let inferences = 0;
    let completeVitals = 0;
    /** Drift partial rows by `<model>@<version>`. */
    const driftRows: Record<string, number> = {};
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
        const news2 = record.value.inferences.find((i) => i.model_name === 'news2');
        expect(record.value.inferences.filter((i) => i.model_name === 'news2').length).toBeLessThan(2);
        if (news2) {
          inferences++;
          expect(news2.event_id).toBe(record.value.envelope.event_id);
          expect(news2.model_artifact_sha256).toMatch(/^[0-9a-f]{64}$/);
          // No registry in this run: the pipeline's default versions, live and clinical.
          expect(only(record.value, 'deterioration')).toMatchObject({
            model_version: '1.0.0',
            rollout: 'live',
            routing: { source: 'pipeline', clinical: true },
          });
          expect(news2).toMatchObject({
            rollout: 'live',
            rollout_id: null,
            routing: { source: 'pipeline', clinical: true },
          });
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
      // Every inference of every record goes out, one value each.
      const made = (outcome.completed as readonly { value: ScoredEvent }[]).reduce(
        (n, r) => n + r.value.inferences.length,
        0,
      );
      expect(emitted.outputs.find((o) => o.name === 'inferences')?.values).toHaveLength(made);
      expect(emitted.deadLetters).toHaveLength(outcome.rejected.length);
      expect(emitted.raw).toHaveLength(batch.origins.length);
      for (const row of emitted.outputs.find((o) => o.name === 'driftHistograms')?.values ?? []) {
        const { model_name, model_version } = row.value as { model_name: string; model_version: string };
        driftRows[`${model_name}@${model_version}`] = (driftRows[`${model_name}@${model_version}`] ?? 0) + 1;
      }
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
    // Drift is measured for both models' default versions, each filed under its own name and version.
    expect(Object.keys(driftRows).sort()).toEqual(['deterioration@1.0.0', 'news2@1.0.0']);
    expect(driftRows['deterioration@1.0.0']).toBe(driftRows['news2@1.0.0']);
  }, 60_000);
  it('reads both lanes and requires gateway provenance: alarms pass beside vitals, ungated and altered records do not', async () => {
    expect(gated.sources.map((s) => s.topic)).toEqual([TOPICS.raw, TOPICS.rawPriority]);
    const engine = await openEngine(gated);
    const at = (i: number) => ({ observed_at: T0 + i * 1_000, received_at: T0 + i * 1_000 + 300 });
    const vitalsFrom = (device: string, n: number, base: number) =>
      Array.from({ length: n }, (_, i) =>
        gatewayEnvelope({
          device_id: device,
          event_id: ulidFor(base + i),
          sequence: base + i,
          nonce: `nonce-${base + i}`,
          ...at(base + i),
        }),
      );
    const alarm: Alarm = { alarm_code: 'SPO2_LOW', category: 'physiological', priority: 'high', active: true };
    const alarmOf = (device: string, n: number) =>
      gatewayEnvelope({
        device_id: device,
        event_type: 'alarm',
        payload: wrapPayload('alarm', alarm),
        event_id: ulidFor(900 + n),
        sequence: 900 + n,
        nonce: `nonce-alarm-${n}`,
        ...at(900 + n),
      });

    const signed = [...vitalsFrom('dev-a', 6, 100), ...vitalsFrom('dev-b', 6, 200)];
    const ungated = envelope({ device_id: 'dev-c', event_id: ulidFor(300), sequence: 300, ...at(300) });
    const altered = { ...vitalsFrom('dev-c', 1, 301)[0]!, sequence: 302 };
    const rawOutcome = await engine.process(laneBatch(TOPICS.raw, [...signed, ungated, altered]));
    expect(rawOutcome.completed).toHaveLength(signed.length);
    expect(rawOutcome.rejected.map((r) => r.code).sort()).toEqual(['INTEGRITY_MISMATCH', 'NOT_FROM_GATEWAY']);

    // The alarm lane holds the same partition:offset positions as raw (0, 1, 2): they are other records, not replays.
    const alarms = [alarmOf('dev-a', 1), alarmOf('dev-b', 2), alarmOf('dev-a', 3)];
    const laneOutcome = await engine.process(laneBatch(TOPICS.rawPriority, [...alarms, alarms[0]!]));
    expect(laneOutcome.completed).toHaveLength(3);
    expect(laneOutcome.duplicates.map((d) => [d.record.origin.offset, d.kind, d.firstSeen])).toEqual([
      [3, 'event_id', '0:0/1'],
    ]);
    const emitted = materialise(gated, laneOutcome, 0);
    const normalised = emitted.outputs.find((o) => o.name === 'normalised')?.values ?? [];
    expect(normalised.map((v) => [v.value.event_type, v.value.source_topic])).toEqual(
      alarms.map(() => ['alarm', TOPICS.rawPriority]),
    );
    // The raw plane keeps the gateway's evidence of every consumed record (0007_gateway.sql).
    expect(emitted.raw.map((r) => [r.signedEvent, r.gatewayId, r.integrityHash])).toEqual(
      [...alarms, alarms[0]!].map((e) => [e.signed_event, e.gateway_id, e.integrity_hash]),
    );
    // A raw record re-sent on the alarm lane is the same event: a duplicate, whichever lane saw it first.
    const again = await engine.process(laneBatch(TOPICS.rawPriority, [signed[0]!], 4));
    expect(again.duplicates.map((d) => d.firstSeen)).toEqual(['0:0']);
    await engine.close();
  });
});
