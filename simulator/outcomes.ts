/**
 * Ground-truth outcomes of simulated patients: what a care team records after a patient deteriorates (an escalation,
 * a transfer to intensive care, a deterioration confirmed on review). Calibration and promotion criteria compare a
 * model's probabilities with these, so they are drawn from the same physiology the vitals come from
 * (simulator/physiology.ts): a patient whose episode gets serious has an outcome with a probability that rises with
 * the episode's severity (and a little with age), at a time while the episode rises or holds its peak, so the vitals
 * move before the outcome is recorded. Stable and chronic patients have a small base rate, at any time.
 *
 * Horizon rules (what a run can observe):
 * - an outcome is returned only when `occurred_at` lies in the run's window [startTime, endTime): an episode that
 *   peaked before the run, or rises after it ends, has no outcome in the run;
 * - `recorded_at` = `occurred_at` + a documentation delay that depends on the kind (minutes for an escalation, hours
 *   for a confirmed deterioration); it may fall after the window's end, as charting does;
 * - at most one outcome per patient per run.
 *
 * Deterministic: each patient's draws come from their own stream `Prng.derive(seed, 'outcome/<device index>')`, so
 * the same seed and fleet give the same outcomes whatever else the simulation does (fault rates, event counts).
 */
import type { Outcome } from '../schemas/generated/outcome.ts';
import type { Device, Fleet } from './fleet.ts';
import type { AgeBand, Patient } from './physiology.ts';
import { Prng } from './prng.ts';
import { horizonMs, resolveSimulateOptions, type SimulateOptions } from './simulate.ts';
import { ulid } from './ulid.ts';

export type { Outcome };
export type OutcomeKind = Outcome['kind'];
export const OUTCOME_KINDS: readonly OutcomeKind[] = ['escalation', 'icu_transfer', 'confirmed_deterioration'];

/** The run the outcomes belong to: its seed and the window outcomes may occur in. */
export interface OutcomeWindow {
  readonly seed: number | string;
  readonly startTime: number;
  /** Exclusive end of the window. */
  readonly endTime: number;
}

export const OUTCOME_SOURCE = 'simulator';

const DAY_MS = 86_400_000;
const MINUTE_MS = 60_000;

/** Outcomes per patient-day without a serious episode (a fall, a family's call, a cautious clinician). */
export const BASE_RATE_PER_DAY = { stable: 0.01, chronic_respiratory: 0.03 } as const;

/** Older patients given the same physiology are escalated a little more often. */
const AGE_FACTOR: Record<AgeBand, number> = { '18-39': 0.75, '40-64': 0.9, '65-79': 1, '80+': 1.1 };

/** Documentation delay (ms) by kind: uniform in [lo, hi]. */
const RECORD_DELAY_MS: Record<OutcomeKind, readonly [number, number]> = {
  escalation: [5 * MINUTE_MS, 60 * MINUTE_MS],
  icu_transfer: [15 * MINUTE_MS, 3 * 60 * MINUTE_MS],
  confirmed_deterioration: [60 * MINUTE_MS, 12 * 60 * MINUTE_MS],
};

/**
 * Probability that an episode patient has an outcome during the episode: 0 without an episode, rising with the
 * episode's peak severity (0.25..1) from about 0.1 to 0.95, times an age factor.
 */
export function episodeOutcomeChance(patient: Pick<Patient, 'severity' | 'ageBand'>): number {
  if (patient.severity <= 0) return 0;
  const s = Math.min(1, patient.severity);
  return Math.min(0.95, s ** 1.5 * AGE_FACTOR[patient.ageBand]);
}

/**
 * When an episode's outcome may occur: from well up the rise to the middle of the plateau, when the vitals have
 * moved most of the way (uniform in [from, to]).
 */
export function episodeOutcomeSpan(p: Pick<Patient, 'episodeStart' | 'rise' | 'hold'>): { from: number; to: number } {
  return { from: p.episodeStart + 0.6 * p.rise, to: p.episodeStart + p.rise + 0.5 * p.hold };
}

/** Which kind an episode's outcome is: the more severe, the more often intensive care. */
function episodeKind(prng: Prng, severity: number): OutcomeKind {
  return prng.weighted<OutcomeKind>([
    ['escalation', 0.65 * (1.2 - severity)],
    ['confirmed_deterioration', 0.35],
    ['icu_transfer', Math.max(0, severity - 0.45) * 1.6],
  ]);
}

/** The outcome of one simulated patient in the window, or null. */
export function patientOutcome(
  device: Pick<Device, 'index' | 'patientRef' | 'siteId' | 'patient'>,
  window: OutcomeWindow,
): Outcome | null {
  // Every draw happens whatever the branch, so one patient's stream never depends on the branch another took.
  const prng = Prng.derive(window.seed, `outcome/${device.index}`);
  const p = device.patient;
  const happens = prng.float();
  const when = prng.float();
  const delay = prng.float();
  const kindPrng = Prng.derive(window.seed, `outcome-kind/${device.index}`);
  let kind: OutcomeKind;
  let occurredAt: number;
  if (p.severity > 0) {
    if (happens >= episodeOutcomeChance(p)) return null;
    const { from, to } = episodeOutcomeSpan(p);
    occurredAt = Math.round(from + (to - from) * when);
    kind = episodeKind(kindPrng, p.severity);
  } else {
    const days = Math.max(0, window.endTime - window.startTime) / DAY_MS;
    const rate =
      p.condition === 'chronic_respiratory' ? BASE_RATE_PER_DAY.chronic_respiratory : BASE_RATE_PER_DAY.stable;
    if (happens >= 1 - Math.exp(-rate * days)) return null;
    occurredAt = Math.round(window.startTime + (window.endTime - window.startTime) * when);
    kind = kindPrng.chance(0.8) ? 'escalation' : 'confirmed_deterioration';
  }
  if (occurredAt < window.startTime || occurredAt >= window.endTime) return null;
  const [lo, hi] = RECORD_DELAY_MS[kind];
  return {
    outcome_id: ulid(occurredAt, kindPrng),
    patient_ref: device.patientRef,
    site_id: device.siteId,
    kind,
    occurred_at: occurredAt,
    recorded_at: occurredAt + Math.round(lo + (hi - lo) * delay),
    source: OUTCOME_SOURCE,
  };
}

/**
 * The ground-truth outcomes of a simulated fleet in a window, ordered by occurred_at (then outcome_id).
 *
 * @example
 * const options = { devices: 1000, events: 100_000, seed: 7 };
 * const outcomes = outcomesFor(fleetFor(options), outcomeWindowFor(options));
 * // [{ outcome_id: '01K...', patient_ref: 'psn-v1-...', kind: 'icu_transfer', occurred_at, recorded_at, ... }]
 */
export function outcomesFor(fleet: Fleet | readonly Device[], window: OutcomeWindow): Outcome[] {
  const devices = 'devices' in fleet ? fleet.devices : fleet;
  const out: Outcome[] = [];
  for (const device of devices) {
    const outcome = patientOutcome(device, window);
    if (outcome !== null) out.push(outcome);
  }
  return out.sort((a, b) =>
    a.occurred_at !== b.occurred_at ? a.occurred_at - b.occurred_at : a.outcome_id < b.outcome_id ? -1 : 1,
  );
}

/** The outcome window of a `simulateFleet` run with these options: its seed, start and expected length. */
export function outcomeWindowFor(options: SimulateOptions = {}): OutcomeWindow {
  const o = resolveSimulateOptions(options);
  return { seed: o.seed, startTime: o.startTime, endTime: o.startTime + horizonMs(o) };
}
