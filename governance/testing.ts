/**
 * Test scaffolding for governance: a valid format-2 manifest (a probability model over vital signs) and ids, so
 * each test states only what it changes. Imports no test framework; not used by production code.
 */
import type { ModelManifest } from '../runtime/models.ts';

/** A valid manifest for `<name>@<version>`; `overrides` replace top-level fields. */
export function sampleManifest(
  name = 'deterioration',
  version = '1.0.0',
  overrides: Partial<ModelManifest> = {},
): ModelManifest {
  return {
    manifest_version: 2,
    name,
    version,
    description: 'Logistic regression on vital signs, trained on simulated patients (test fixture).',
    artifact: { file: 'model.onnx', sha256: 'a'.repeat(64) },
    input_tensor: 'features',
    inputs: [
      { name: 'respiratory_rate', field: 'vital_signs.respiratory_rate', unit: '/min', min: 0, max: 80 },
      { name: 'spo2', field: 'vital_signs.spo2', unit: '%', min: 50, max: 100 },
      {
        name: 'on_oxygen',
        field: 'vital_signs.on_oxygen',
        unit: '1',
        min: 0,
        max: 1,
        encode: { true: 1, false: 0 },
      },
    ],
    features: ['respiratory_rate', 'spo2', 'on_oxygen'],
    output: {
      kind: 'probability',
      score_tensor: 'probability',
      contributions_tensor: null,
      thresholds: { low_medium: 0.05, medium: 0.15, high: 0.3 },
      outcome: { kinds: ['icu_transfer', 'confirmed_deterioration'], horizon_ms: 86_400_000 },
    },
    intended_use: 'Decision support: early warning of deterioration in adults monitored at home.',
    population: { description: 'Adults in hospital-at-home', age_bands: ['18-64', '65-79', '80+'], settings: ['home'] },
    training_data: {
      dataset_id: 'sim-seed-42',
      time_range: { from: '2026-01-01T00:00:00Z', to: '2026-03-01T00:00:00Z' },
      sites: ['site-01', 'site-02'],
      sha256: 'b'.repeat(64),
      rows: 1000,
    },
    reference: null,
    pccp: { modification_id: 'PCCP-DET-001', description: 'Retraining on new data under the same intended use' },
    acceptance_criteria: {
      min_inferences: 100,
      min_agreement_with_live: 0.8,
      calibration: { min_outcome_events: 10, citl_abs_max: 0.05, slope_min: 0.8, slope_max: 1.2, ece_max: 0.05 },
      subgroup_brier_margin: 0.02,
    },
    drift: { js_threshold: 0.1, dataset_share: 0.5, auto_rollback: true },
    build: { script: 'test' },
    ...overrides,
  };
}
