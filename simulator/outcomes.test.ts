/**
 * Simulated outcomes: the same seed gives the same records, serious episodes end in outcomes more often than mild
 * ones (and far more often than stable patients), every outcome falls inside the run's window, during its patient's
 * rise or plateau, and is recorded after it occurred.
 */
import { describe, expect, it } from 'vitest';
import { buildFleet, type Device } from './fleet.ts';
import {
  episodeOutcomeChance,
  episodeOutcomeSpan,
  OUTCOME_KINDS,
  outcomesFor,
  outcomeWindowFor,
  patientOutcome,
} from './outcomes.ts';
import { intensity } from './physiology.ts';
import { fleetFor } from './simulate.ts';

const START = Date.UTC(2026, 0, 5, 6);
const HORIZON = 48 * 3_600_000;
const WINDOW = { seed: 'outcomes-test', startTime: START, endTime: START + HORIZON };

function fleet(devices: number, seed = WINDOW.seed) {
  return buildFleet({
    devices,
    sites: 6,
    seed,
    startTime: START,
    horizonMs: HORIZON,
    candidateFirmware: '5.13.0-rc2',
    biasOn: false,
    candidateFraction: 0,
  });
}

describe('outcomesFor', () => {
  const big = fleet(6000);
  const outcomes = outcomesFor(big, WINDOW);
  const byRef = new Map(big.devices.map((d) => [d.patientRef, d] as const));

  it('is deterministic from the seed, and another seed gives other outcomes', () => {
    expect(outcomesFor(fleet(6000), WINDOW)).toEqual(outcomes);
    const other = outcomesFor(fleet(6000, 'another'), { ...WINDOW, seed: 'another' });
    expect(other.map((o) => o.outcome_id)).not.toEqual(outcomes.map((o) => o.outcome_id));
  });

  it('shapes records as the Outcome schema, with unique ids, ordered by occurred_at', () => {
    expect(outcomes.length).toBeGreaterThan(200);
    expect(new Set(outcomes.map((o) => o.outcome_id)).size).toBe(outcomes.length);
    expect(new Set(outcomes.map((o) => o.patient_ref)).size).toBe(outcomes.length);
    for (const o of outcomes) {
      expect(OUTCOME_KINDS).toContain(o.kind);
      expect(o.source).toBe('simulator');
      expect(o.outcome_id).toMatch(/^[0-7][0-9A-HJKMNP-TV-Z]{25}$/);
      expect(o.site_id).toBe(byRef.get(o.patient_ref)?.siteId);
      expect(Number.isInteger(o.occurred_at) && Number.isInteger(o.recorded_at)).toBe(true);
    }
    for (let i = 1; i < outcomes.length; i++) {
      expect(outcomes[i]!.occurred_at).toBeGreaterThanOrEqual(outcomes[i - 1]!.occurred_at);
    }
  });

  it('keeps every outcome inside the window, recorded after it occurred', () => {
    for (const o of outcomes) {
      expect(o.occurred_at).toBeGreaterThanOrEqual(WINDOW.startTime);
      expect(o.occurred_at).toBeLessThan(WINDOW.endTime);
      expect(o.recorded_at).toBeGreaterThan(o.occurred_at);
      expect(o.recorded_at - o.occurred_at).toBeLessThanOrEqual(12 * 3_600_000);
    }
    // A window that closes before anything happens has nothing in it.
    expect(outcomesFor(big, { ...WINDOW, endTime: WINDOW.startTime })).toEqual([]);
    // An episode's outcome does not depend on the window: a narrower one keeps those that occur inside it.
    const half = { ...WINDOW, endTime: START + HORIZON / 2 };
    const episodeOnly = (list: typeof outcomes) => list.filter((o) => byRef.get(o.patient_ref)!.patient.severity > 0);
    expect(episodeOnly(outcomesFor(big, half))).toEqual(
      episodeOnly(outcomes).filter((o) => o.occurred_at < half.endTime),
    );
  });

  it("places an episode's outcome while it rises or holds, when the patient's vitals have moved", () => {
    let episodes = 0;
    for (const o of outcomes) {
      const p = byRef.get(o.patient_ref)!.patient;
      if (p.severity === 0) continue;
      episodes++;
      const span = episodeOutcomeSpan(p);
      expect(span.from).toBeGreaterThan(p.episodeStart);
      expect(span.to).toBeLessThanOrEqual(p.episodeStart + p.rise + p.hold);
      expect(o.occurred_at).toBeGreaterThanOrEqual(Math.floor(span.from));
      expect(o.occurred_at).toBeLessThanOrEqual(Math.ceil(span.to));
      expect(intensity(p, o.occurred_at)).toBeGreaterThanOrEqual(0.6 * p.severity - 1e-9);
    }
    expect(episodes).toBeGreaterThan(outcomes.length / 2);
  });

  it('makes outcomes more likely the more severe the episode, and rare without one', () => {
    const withOutcome = new Set(outcomes.map((o) => o.patient_ref));
    // Judge by patients whose whole rise-and-plateau lies inside the window, so the window does not censor them.
    const inside = (d: Device) =>
      episodeOutcomeSpan(d.patient).from >= START && episodeOutcomeSpan(d.patient).to < START + HORIZON;
    const rate = (ds: readonly Device[]) => ds.filter((d) => withOutcome.has(d.patientRef)).length / ds.length;
    const episodes = big.devices.filter((d) => d.patient.severity > 0 && inside(d));
    const mild = episodes.filter((d) => d.patient.severity < 0.5);
    const moderate = episodes.filter((d) => d.patient.severity >= 0.5 && d.patient.severity < 0.75);
    const severe = episodes.filter((d) => d.patient.severity >= 0.75);
    const stable = big.devices.filter((d) => d.patient.severity === 0);
    expect(mild.length).toBeGreaterThan(100);
    expect(severe.length).toBeGreaterThan(50);
    expect(rate(mild)).toBeLessThan(rate(moderate));
    expect(rate(moderate)).toBeLessThan(rate(severe));
    expect(rate(severe)).toBeGreaterThan(0.6);
    expect(rate(stable)).toBeLessThan(0.05);
    expect(rate(stable)).toBeGreaterThan(0);
    expect(episodeOutcomeChance({ severity: 0, ageBand: '80+' })).toBe(0);
    expect(episodeOutcomeChance({ severity: 0.3, ageBand: '65-79' })).toBeLessThan(
      episodeOutcomeChance({ severity: 0.9, ageBand: '65-79' }),
    );
  });

  it('gives each patient the same outcome whatever else is in the fleet (one stream per patient)', () => {
    const small = big.devices.slice(0, 500);
    const refs = new Set(small.map((d) => d.patientRef));
    expect(outcomesFor(small, WINDOW)).toEqual(outcomes.filter((o) => refs.has(o.patient_ref)));
    const one = small.find((d) => patientOutcome(d, WINDOW) !== null)!;
    expect(outcomes).toContainEqual(patientOutcome(one, WINDOW));
  });

  it('outcomeWindowFor spans a simulateFleet run', () => {
    const options = { devices: 50, events: 20_000, seed: 3 };
    const window = outcomeWindowFor(options);
    expect(window.seed).toBe(3);
    expect(window.endTime).toBeGreaterThan(window.startTime);
    const found = outcomesFor(fleetFor(options), window);
    for (const o of found) expect(o.occurred_at).toBeLessThan(window.endTime);
  });
});
