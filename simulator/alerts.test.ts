import { describe, expect, it } from 'vitest';
import { dedupe } from '../operators/dedupe/index.ts';
import { validate } from '../operators/validate/index.ts';
import { ManualClock } from '../runtime/clock.ts';
import { VigilError } from '../runtime/errors.ts';
import { silentLogger } from '../runtime/log.ts';
import type { ModelStore } from '../runtime/models.ts';
import type { OperatorContext } from '../runtime/operator.ts';
import type { InFlight } from '../runtime/record.ts';
import { MemoryStateBackend } from '../runtime/state/memory.ts';
import { type Envelope, payloadOf } from '../schemas/types.ts';
import { alertScenarioTruth, expectedAlerts, SCRIPTED_VITALS, simulateAlertScenario } from './alerts.ts';
import { news2 } from './news2.ts';
import { isUlid } from './ulid.ts';

const MIN = 60_000;

describe('alert scenario', () => {
  it('scripts NEWS2 totals by their chart bands', () => {
    expect(news2(SCRIPTED_VITALS.zero)).toMatchObject({ total: 0, band: 'low' });
    expect(news2(SCRIPTED_VITALS.two)).toMatchObject({ total: 2, anyThree: false, band: 'low' });
    expect(news2(SCRIPTED_VITALS.red)).toMatchObject({ total: 3, anyThree: true, band: 'low-medium' });
    expect(news2(SCRIPTED_VITALS.five)).toMatchObject({ total: 5, band: 'medium' });
    expect(news2(SCRIPTED_VITALS.eight)).toMatchObject({ total: 8, band: 'high' });
  });

  it('is deterministic, in observed_at order, with unique ULIDs and rising sequences per device', () => {
    const a = [...simulateAlertScenario()];
    const b = [...simulateAlertScenario()];
    expect(b).toEqual(a);
    const ids = new Set(a.map((r) => r.envelope.event_id));
    expect(ids.size).toBe(a.length);
    expect(a.every((r) => isUlid(r.envelope.event_id))).toBe(true);
    for (let i = 1; i < a.length; i++) {
      expect(a[i]!.envelope.observed_at).toBeGreaterThanOrEqual(a[i - 1]!.envelope.observed_at);
    }
    const last = new Map<string, number>();
    for (const r of a) {
      expect(r.envelope.sequence).toBe((last.get(r.key) ?? 0) + 1);
      last.set(r.key, r.envelope.sequence!);
    }
  });

  it('every record is a valid, first-copy envelope for the vitals pipeline', async () => {
    const clock = new ManualClock(Date.UTC(2026, 0, 5, 12, 0, 0));
    const noModel = async () => {
      throw new VigilError('MODEL_NOT_FOUND', 'none');
    };
    const models: ModelStore = { load: noModel, readVerified: noModel, manifest: noModel };
    const context: OperatorContext = {
      pipeline: 'scenario-test',
      clock,
      state: new MemoryStateBackend({ clock }),
      log: silentLogger,
      models,
    };
    const validator = validate();
    const deduper = dedupe();
    await validator.open?.(context);
    await deduper.open?.(context);
    const records = [...simulateAlertScenario()];
    const batch: InFlight<Envelope>[] = records.map((r, offset) => ({
      value: r.envelope,
      origin: {
        topic: 'scenario',
        partition: 0,
        offset,
        consumedAt: r.envelope.received_at + 200,
        rawSha256: '0'.repeat(64),
        raw: Buffer.alloc(0),
        headers: [],
        key: r.key,
      },
    }));
    const validated = await validator.process(batch);
    expect(validated.rejected.map((r) => r.detail)).toEqual([]);
    const deduped = await deduper.process(validated.out);
    expect(deduped.out.length).toBe(records.length);
  });

  it('the deteriorating script crosses 5 then 7 and recovers; shadow-only patients are only shadow-scored', () => {
    const det = [...simulateAlertScenario()].filter(
      (r) => r.cohort === 'deteriorating' && r.envelope.event_type === 'vital_signs',
    );
    const start = det[0]!.envelope.observed_at;
    const totals = det
      .filter((r) => r.key === det[0]!.key)
      .map((r) => {
        const p = payloadOf(r.envelope.payload);
        return [(r.envelope.observed_at - start) / MIN, p?.type === 'vital_signs' ? news2(p.data)?.total : null];
      });
    expect(totals.find(([m]) => m === 55)?.[1]).toBe(0);
    expect(totals.find(([m]) => m === 60)?.[1]).toBe(5);
    expect(totals.find(([m]) => m === 120)?.[1]).toBe(8);
    expect(totals.find(([m]) => m === 180)?.[1]).toBe(5);
    expect(totals.find(([m]) => m === 240)?.[1]).toBe(2);
    expect(det.every((r) => r.scoredBy.join() === 'live,shadow')).toBe(true);
    const shadow = [...simulateAlertScenario()].filter(
      (r) => r.cohort === 'shadow-only' && r.envelope.event_type === 'vital_signs',
    );
    expect(shadow.every((r) => r.scoredBy.join() === 'shadow')).toBe(true);
  });

  it('truth: the alerts expected per rule and band', () => {
    expect(alertScenarioTruth()).toEqual({
      records: 1044,
      vitals: 876,
      inferences: { live: 730, shadow: 292 },
      alarms: 12,
      statuses: 156,
      rules: {
        'news2.response': {
          alerts: 4,
          opened: { medium: 2, low_medium: 2 },
          peak: { high: 2, low_medium: 2 },
          resolved: 4,
        },
        'device.alarm': {
          alerts: 6,
          opened: { high: 2, medium: 2, low: 2 },
          peak: { high: 2, medium: 2, low: 2 },
          resolved: 6,
        },
        'technical.calibration_stale': { alerts: 2, opened: { low: 2 }, peak: { low: 2 }, resolved: 2 },
        'technical.sensor_off': { alerts: 2, opened: { medium: 2 }, peak: { medium: 2 }, resolved: 2 },
        'technical.battery_critical': { alerts: 2, opened: { medium: 2 }, peak: { medium: 2 }, resolved: 2 },
      },
      fromShadow: 0,
    });
    // A shorter run ends with alerts still open, and never at a band it has not reached.
    const short = expectedAlerts({ minutes: 100, perCohort: 1 });
    const deteriorating = short.find((a) => a.cohort === 'deteriorating')!;
    expect(deteriorating).toMatchObject({
      openBand: 'medium',
      peakBand: 'medium',
      resolveAt: Number.POSITIVE_INFINITY,
    });
    expect(() => [...simulateAlertScenario({ perCohort: 0 })]).toThrow(VigilError);
  });
});
