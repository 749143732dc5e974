/**
 * The manifest schema is strict and checks the fields that must agree: a manifest that would load the wrong columns,
 * drop a criterion or mis-band a probability is refused with a message naming the field.
 */
import { describe, expect, it } from 'vitest';
import { VigilError } from '../runtime/errors.ts';
import { manifestSchema, parseManifest, riskBandOf } from './manifest.ts';
import { sampleManifest } from './testing.ts';

function refusal(value: unknown): VigilError {
  try {
    parseManifest(value, 'models/x/1.0.0/manifest.json');
  } catch (error) {
    expect(error).toBeInstanceOf(VigilError);
    return error as VigilError;
  }
  throw new Error('expected the manifest to be refused');
}

describe('parseManifest', () => {
  it('accepts a valid format-2 manifest and returns it unchanged', () => {
    const manifest = sampleManifest();
    expect(parseManifest(JSON.parse(JSON.stringify(manifest)), 'here')).toEqual(manifest);
  });

  it('accepts a NEWS2-shaped output without calibration criteria', () => {
    const manifest = sampleManifest('news2', '1.0.0', {
      output: { kind: 'news2', score_tensor: 'score', subscores_tensor: 'subscores', band_tensor: 'band' },
      acceptance_criteria: {
        min_inferences: 10,
        min_agreement_with_live: 0.95,
        calibration: null,
        subgroup_brier_margin: null,
      },
    });
    expect(parseManifest(manifest, 'here').output.kind).toBe('news2');
  });

  it('refuses an unknown key, naming it, with MODEL_INTEGRITY_FAILED and where it was read', () => {
    const error = refusal({ ...sampleManifest(), acceptance: {} });
    expect(error.code).toBe('MODEL_INTEGRITY_FAILED');
    expect(error.message).toContain('models/x/1.0.0/manifest.json');
    expect(error.message).toContain('acceptance');
  });

  it('refuses a format-1 manifest (no manifest_version)', () => {
    const { manifest_version: _, ...v1 } = sampleManifest();
    expect(refusal(v1).message).toContain('manifest_version');
  });

  it('refuses features that differ from inputs[].name', () => {
    const error = refusal({ ...sampleManifest(), features: ['spo2', 'respiratory_rate', 'on_oxygen'] });
    expect(error.message).toContain('features must equal inputs[].name');
  });

  it('refuses thresholds out of order, a min above max, a bad sha256, an unsafe name, a file outside the folder', () => {
    const good = sampleManifest();
    const output = good.output.kind === 'probability' ? good.output : undefined;
    expect(
      refusal({ ...good, output: { ...output, thresholds: { low_medium: 0.2, medium: 0.1, high: 0.3 } } }).message,
    ).toContain('thresholds must increase');
    const inputs = [{ ...good.inputs[0]!, min: 10, max: 5 }, ...good.inputs.slice(1)];
    expect(refusal({ ...good, inputs }).message).toContain('min must not exceed max');
    expect(refusal({ ...good, artifact: { file: 'model.onnx', sha256: 'ABC' } }).message).toContain('sha256');
    expect(refusal({ ...good, name: '../evil' }).message).toContain('plain folder name');
    expect(refusal({ ...good, artifact: { ...good.artifact, file: '../x.onnx' } }).message).toContain('artifact');
  });

  it('requires calibration criteria exactly for probability outputs', () => {
    const good = sampleManifest();
    const error = refusal({ ...good, acceptance_criteria: { ...good.acceptance_criteria, calibration: null } });
    expect(error.message).toContain('calibration criteria are required');
  });

  it('refuses min_inferences 0: a promotion is never evaluated on no inferences at all', () => {
    const good = sampleManifest();
    const error = refusal({ ...good, acceptance_criteria: { ...good.acceptance_criteria, min_inferences: 0 } });
    expect(error.message).toContain('min_inferences');
  });

  it('refuses a training time range that ends before it starts', () => {
    const good = sampleManifest();
    const training_data = {
      ...good.training_data,
      time_range: { from: '2026-03-01T00:00:00Z', to: '2026-01-01T00:00:00Z' },
    };
    expect(refusal({ ...good, training_data }).message).toContain('from must not be after to');
  });

  it('documents every field with a description (the schema is the reference)', () => {
    const json = JSON.stringify(manifestSchema.toJSONSchema());
    expect(json).toContain('The PCCP modification id the version was released under.');
    expect(json).toContain('"examples"');
  });
});

describe('riskBandOf', () => {
  const t = { low_medium: 0.05, medium: 0.15, high: 0.3 };
  it('puts a probability at a threshold in that band and below it in the band under', () => {
    expect(riskBandOf(0, t)).toBe('low');
    expect(riskBandOf(0.0499, t)).toBe('low');
    expect(riskBandOf(0.05, t)).toBe('low_medium');
    expect(riskBandOf(0.15, t)).toBe('medium');
    expect(riskBandOf(0.2999, t)).toBe('medium');
    expect(riskBandOf(0.3, t)).toBe('high');
    expect(riskBandOf(1, t)).toBe('high');
  });
});
