/**
 * The demo's question on the demo's fleet: the simulator (1,000 devices, 100,000 events, one pilot firmware whose
 * SpO2 sensor reads low) through detect-drift with the committed news2@1.0.0 reference and default thresholds.
 * The biased firmware's SpO2 (and the score it feeds) is found; the same run without the bias reports no drift at
 * any grouping: per window, per firmware and site, per firmware.
 *
 * Scores come from the plain-TypeScript NEWS2 chart the score operator's tests hold the ONNX model to.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import { OnnxModelStore } from '../../adapters/onnx/index.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { silentLogger } from '../../runtime/log.ts';
import type { InFlight } from '../../runtime/record.ts';
import { MemoryStateBackend } from '../../runtime/state/memory.ts';
import { payloadOf } from '../../schemas/types.ts';
import { DEFAULT_BIASED_FIRMWARE, simulateFleet } from '../../simulator/index.ts';
import { batches, inferenceFor, originFor } from '../../test/fixtures/detect-drift.ts';
import { news2Features } from '../score/features.ts';
import { news2Reference } from '../score/news2-reference.ts';
import type { ScoredEvent } from '../types.ts';
import { type DetectDriftOperator, type DriftHistogramRow, detectDrift } from './index.ts';
import type { DriftReferenceRow } from './reference.ts';
import { driftFindings, driftReports } from './report.ts';

let operator: DetectDriftOperator;
let references: DriftReferenceRow[];

beforeAll(async () => {
  operator = detectDrift({ model: 'news2', version: '1.0.0' });
  const clock = new ManualClock();
  await operator.open({
    pipeline: 'vitals@1',
    clock,
    state: new MemoryStateBackend({ clock }),
    log: silentLogger,
    models: new OnnxModelStore(),
  });
  references = operator.referenceRows(clock.now());
});

/** The valid envelopes of a simulated run, scored, through the operator in 500-record batches of 4 partitions. */
function partials(biasedFirmware: string | null): DriftHistogramRow[] {
  const byPartition: InFlight<ScoredEvent>[][] = [[], [], [], []];
  let offset = 0;
  for (const record of simulateFleet({ seed: 7, biasedFirmware, duplicateRate: 0, replayRate: 0, malformedRate: 0 })) {
    if (record.kind !== 'envelope' || record.truth !== 'valid') continue;
    const envelope = record.envelope;
    const payload = payloadOf(envelope.payload);
    const features = payload?.type === 'vital_signs' ? news2Features(payload.data) : null;
    const inference = features === null ? null : inferenceFor(envelope, news2Reference(features).score);
    const partition = Number.parseInt(envelope.device_id.slice(-2), 10) % 4;
    byPartition[partition]!.push({
      value: { envelope, flags: [], inferences: inference ? [inference] : [] },
      origin: originFor(offset++, { partition }),
    });
  }
  return byPartition.flatMap((records) =>
    batches(records, 500).flatMap((batch) => operator.measure(batch).side.driftHistograms ?? []),
  );
}

const RANGE = { model: 'news2', version: '1.0.0', from: 0, to: Date.UTC(2100, 0, 1), limit: 1000 } as const;
const label = (r: { firmware_version: string; site_id?: string | null; feature: string }) =>
  [r.firmware_version, r.site_id, r.feature].filter(Boolean).join('/');

describe('drift on the simulated fleet', () => {
  it('finds the biased firmware, on SpO2 and the score only', () => {
    const rows = partials(DEFAULT_BIASED_FIRMWARE);
    const byFirmware = driftFindings(rows, references, RANGE);
    expect(byFirmware.filter((f) => f.drifted).map(label)).toEqual([
      `${DEFAULT_BIASED_FIRMWARE}/spo2`,
      `${DEFAULT_BIASED_FIRMWARE}/score`,
    ]);
    const spo2 = byFirmware[0]!;
    expect(spo2.js_distance!).toBeGreaterThan(0.5);
    expect(spo2.devices).toBeGreaterThan(80); // the pilot cohort: about 12% of 1,000 devices
    expect(spo2.devices).toBeLessThan(160);
    // Per site and per window too, nothing but the biased cohort's SpO2 and score.
    const bySite = driftFindings(rows, references, { ...RANGE, by: 'firmware_site' }).filter((f) => f.drifted);
    const windows = driftReports(rows, references).filter((r) => r.drifted);
    for (const finding of [...bySite, ...windows]) {
      expect(finding.firmware_version).toBe(DEFAULT_BIASED_FIRMWARE);
      expect(['spo2', 'score']).toContain(finding.feature);
    }
    expect(windows.filter((r) => r.feature === 'spo2').length).toBeGreaterThan(0);
  });

  it('reports no drift on the same run without the bias', () => {
    const rows = partials(null);
    expect(
      driftFindings(rows, references, RANGE)
        .filter((f) => f.drifted)
        .map(label),
    ).toEqual([]);
    const bySite = driftFindings(rows, references, { ...RANGE, by: 'firmware_site' });
    expect(bySite.filter((f) => f.drifted).map(label)).toEqual([]);
    const windows = driftReports(rows, references);
    expect(windows.filter((r) => r.sufficient).length).toBeGreaterThan(100); // verdicts were reached, not skipped
    expect(windows.filter((r) => r.drifted).map(label)).toEqual([]);
  });
});
