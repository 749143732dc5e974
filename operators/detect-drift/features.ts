/**
 * The features drift is measured on: the seven NEWS2 inputs of a vital-signs payload and the model's score.
 *
 * `valueType` is the JavaScript type a present value has (categorical bins are labelled with its string form);
 * `kind` is how the reference builder bins it: quantile bins for continuous measurements, one bin per value for
 * few-valued fields. `auto` (the score) becomes categorical when every reference value is an integer and there are
 * few distinct ones (the NEWS2 aggregate 0–20), continuous otherwise (a probability from some other model).
 */
import type { VitalSigns } from '../../schemas/types.ts';

export const FEATURES = [
  'respiratory_rate',
  'spo2',
  'on_oxygen',
  'systolic_bp',
  'pulse',
  'consciousness',
  'temperature_c',
  'score',
] as const;

export type FeatureName = (typeof FEATURES)[number];
export type VitalFeature = Exclude<FeatureName, 'score'>;
export type ValueType = 'number' | 'boolean' | 'string';
export type FeatureKind = 'continuous' | 'categorical';

export interface FeatureSpec {
  readonly name: FeatureName;
  readonly valueType: ValueType;
  readonly kind: FeatureKind | 'auto';
}

export const FEATURE_SPECS: Readonly<Record<FeatureName, FeatureSpec>> = {
  respiratory_rate: { name: 'respiratory_rate', valueType: 'number', kind: 'continuous' },
  spo2: { name: 'spo2', valueType: 'number', kind: 'categorical' },
  on_oxygen: { name: 'on_oxygen', valueType: 'boolean', kind: 'categorical' },
  systolic_bp: { name: 'systolic_bp', valueType: 'number', kind: 'continuous' },
  pulse: { name: 'pulse', valueType: 'number', kind: 'continuous' },
  consciousness: { name: 'consciousness', valueType: 'string', kind: 'categorical' },
  temperature_c: { name: 'temperature_c', valueType: 'number', kind: 'continuous' },
  score: { name: 'score', valueType: 'number', kind: 'auto' },
};

/** `auto` features become categorical with at most this many distinct integer values in the reference. */
export const AUTO_CATEGORICAL_MAX_VALUES = 32;

export type FeatureValue = number | boolean | string | null;

/** A feature's value from a vital-signs payload (null when absent). Never allocates. */
export function vitalValue(vitals: VitalSigns, feature: VitalFeature): FeatureValue {
  return vitals[feature];
}

/** The label a categorical value is binned under (the reference stores labels). */
export function categoryLabel(value: number | boolean | string): string {
  return String(value);
}

/** The value a categorical label stands for, typed as the feature's values are. */
export function categoryValue(label: string, valueType: ValueType): number | boolean | string {
  switch (valueType) {
    case 'number':
      return Number(label);
    case 'boolean':
      return label === 'true';
    case 'string':
      return label;
  }
}
