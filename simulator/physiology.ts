/**
 * The patient model: a baseline per patient, slow autocorrelated wobble, and for some patients an episode of
 * deterioration (rise, plateau, recovery) that moves respiratory rate, pulse, SpO2, temperature and blood pressure
 * together. Onsets are spread evenly over (and before) the run, so the share of patients in an episode stays about the
 * same at any time: an unbiased fleet is stationary and drift detection has nothing to find in it.
 */
import type { Acvpu } from '../schemas/types.ts';
import type { Prng } from './prng.ts';

export const AGE_BANDS = ['18-39', '40-64', '65-79', '80+'] as const;
export type AgeBand = (typeof AGE_BANDS)[number];

export type Condition = 'stable' | 'chronic_respiratory' | 'episode';

export interface Patient {
  readonly ageBand: AgeBand;
  readonly condition: Condition;
  /** On supplemental oxygen throughout (some chronic respiratory patients). */
  readonly homeOxygen: boolean;
  /** Baselines (true physiology, before sensor error). */
  readonly rr: number;
  readonly spo2: number;
  readonly hr: number;
  readonly sbp: number;
  readonly temp: number;
  /** Episode timing in absolute ms, and its peak intensity (0..1). Zero severity means no episode. */
  readonly episodeStart: number;
  readonly rise: number;
  readonly hold: number;
  readonly fall: number;
  readonly severity: number;
  /** How much of the episode shows as fever / as respiratory compromise (per-patient mix). */
  readonly feverWeight: number;
  readonly respWeight: number;
  /** Whether the team starts oxygen when the episode gets serious. */
  readonly oxygenInEpisode: boolean;
}

/** Mutable per-patient state: AR(1) deviations, so consecutive readings are correlated. */
export interface PatientState {
  rr: number;
  spo2: number;
  hr: number;
  sbp: number;
  temp: number;
}

/** True (noise-free apart from the wobble) values at one instant. */
export interface TrueVitals {
  rr: number;
  spo2: number;
  hr: number;
  sbp: number;
  temp: number;
  onOxygen: boolean;
  consciousness: Acvpu;
}

const AGE_WEIGHTS: readonly (readonly [AgeBand, number])[] = [
  ['18-39', 0.1],
  ['40-64', 0.3],
  ['65-79', 0.4],
  ['80+', 0.2],
];
const EPISODE_P: Record<AgeBand, number> = { '18-39': 0.1, '40-64': 0.15, '65-79': 0.2, '80+': 0.25 };
const CHRONIC_P: Record<AgeBand, number> = { '18-39': 0.03, '40-64': 0.07, '65-79': 0.11, '80+': 0.12 };

/**
 * Draws a patient. `start` is the run's start, `horizon` its expected length in ms: episode timing scales with it so
 * a short run and a long one show the same mix of states.
 */
export function drawPatient(prng: Prng, start: number, horizon: number): Patient {
  const ageBand = prng.weighted(AGE_WEIGHTS);
  const u = prng.float();
  const condition: Condition =
    u < EPISODE_P[ageBand] ? 'episode' : u < EPISODE_P[ageBand] + CHRONIC_P[ageBand] ? 'chronic_respiratory' : 'stable';
  const chronic = condition === 'chronic_respiratory';
  const older = ageBand === '65-79' || ageBand === '80+';
  const severity = condition === 'episode' ? 0.25 + 0.75 * prng.float() ** 1.6 : 0;
  const length = horizon * prng.uniform(0.2, 0.6);
  const riseShare = prng.uniform(0.3, 0.5);
  const holdShare = prng.uniform(0.1, 0.3);
  return {
    ageBand,
    condition,
    homeOxygen: chronic ? prng.chance(0.35) : prng.chance(0.01),
    rr: chronic ? prng.gauss(19, 1.5, 15, 23) : prng.gauss(15.5, 1.8, 12, 20),
    spo2: chronic ? prng.gauss(92.5, 1.3, 89, 95) : prng.gauss(97, 1.1, 94.5, 99.6),
    hr: prng.gauss(older ? 74 : 72, 9, 54, 98),
    sbp: prng.gauss(older ? 134 : 122, 14, 102, 178),
    temp: prng.gauss(36.75, 0.25, 36.2, 37.4),
    episodeStart: start + horizon * prng.uniform(-0.5, 1),
    rise: length * riseShare,
    hold: length * holdShare,
    fall: length * (1 - riseShare - holdShare),
    severity,
    feverWeight: prng.uniform(0.2, 1),
    respWeight: prng.uniform(0.5, 1),
    oxygenInEpisode: prng.chance(0.5),
  };
}

export function newPatientState(): PatientState {
  return { rr: 0, spo2: 0, hr: 0, sbp: 0, temp: 0 };
}

/** Episode intensity in 0..severity at time t. */
export function intensity(p: Patient, t: number): number {
  if (p.severity === 0) return 0;
  const dt = t - p.episodeStart;
  if (dt <= 0) return 0;
  if (dt < p.rise) return (p.severity * dt) / p.rise;
  if (dt < p.rise + p.hold) return p.severity;
  const down = dt - p.rise - p.hold;
  if (down < p.fall) return p.severity * (1 - down / p.fall);
  return 0;
}

// AR(1) wobble: phi per reading and the innovation sd that gives each stationary sd.
const PHI = 0.95;
const INNOV = Math.sqrt(1 - PHI * PHI);

/** Advances the wobble one reading and returns the true vitals at t (writes into `out`). */
export function trueVitals(p: Patient, s: PatientState, t: number, prng: Prng, out: TrueVitals): TrueVitals {
  s.rr = PHI * s.rr + INNOV * 1.2 * prng.normal();
  s.spo2 = PHI * s.spo2 + INNOV * 0.8 * prng.normal();
  s.hr = PHI * s.hr + INNOV * 5 * prng.normal();
  s.sbp = PHI * s.sbp + INNOV * 7 * prng.normal();
  s.temp = PHI * s.temp + INNOV * 0.15 * prng.normal();
  const e = intensity(p, t);
  const oxygen = p.homeOxygen || (p.oxygenInEpisode && e > 0.5);
  out.rr = p.rr + s.rr + 14 * e * p.respWeight;
  out.spo2 = p.spo2 + s.spo2 - 9 * e * p.respWeight + (oxygen && !p.homeOxygen ? 3 : 0);
  out.hr = p.hr + s.hr + 42 * e;
  out.sbp = p.sbp + s.sbp - 32 * e;
  out.temp = p.temp + s.temp + 2.4 * e * p.feverWeight;
  out.onOxygen = oxygen;
  out.consciousness = e > 0.8 && prng.chance((e - 0.8) * 1.5) ? (prng.chance(0.85) ? 'C' : 'V') : 'A';
  return out;
}
