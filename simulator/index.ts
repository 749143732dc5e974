/** The simulated hospital-at-home fleet: see ./README.md for the model and ./simulate.ts for the API. */

export {
  ALERT_SCENARIO_DEFAULTS,
  type AlertCohort,
  type AlertScenarioOptions,
  type AlertScenarioRecord,
  type AlertTruthSummary,
  alertScenarioTruth,
  type ExpectedAlert,
  expectedAlerts,
  SCRIPTED_VITALS,
  simulateAlertScenario,
} from './alerts.ts';
export { FAULT_REASONS, RAW_FAULTS, type RawFault, SEMANTIC_FAULTS, type SemanticFault } from './faults.ts';
export {
  DEFAULT_BIASED_FIRMWARE,
  type Device,
  type DeviceKind,
  FIRMWARE_RELEASES,
  type Fleet,
  type Site,
} from './fleet.ts';
export { encodeFramed, frameBody, frameEnvelope } from './framing.ts';
export { type News2, type News2Band, news2 } from './news2.ts';
export {
  type EnvelopeRecord,
  fleetFor,
  type OutputFormat,
  type RawRecord,
  REPLAY_MAX_AGE_MS,
  REPLAY_MIN_AGE_MS,
  REPLAY_WINDOW,
  recordBytes,
  resolveSimulateOptions,
  SIMULATION_DEFAULTS,
  type SimulatedRecord,
  type SimulateOptions,
  simulateFleet,
  type Truth,
  type TruthSummary,
  TruthTally,
  truthIn,
} from './simulate.ts';
