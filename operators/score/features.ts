/**
 * The NEWS2 feature vector: which vital-signs fields feed the model, in which column, and how the two categorical
 * fields become numbers. The model's manifest lists the same names; `score` refuses a model whose feature list
 * differs, so the extractor and the network can never silently disagree about column order.
 */
import type { VitalSigns } from '../../schemas/types.ts';

export const NEWS2_FEATURES = [
  'respiratory_rate',
  'spo2',
  'on_oxygen',
  'systolic_bp',
  'pulse',
  'consciousness_not_alert',
  'temperature_c',
] as const;

export type News2Feature = (typeof NEWS2_FEATURES)[number];

export const NEWS2_WIDTH = NEWS2_FEATURES.length;

/**
 * The seven model inputs of one vital-signs payload, or null when any NEWS2 parameter is missing.
 * - `on_oxygen`: 1 on supplemental oxygen, 0 on air;
 * - `consciousness_not_alert`: 0 for A (alert), 1 for new confusion (C), V, P or U.
 * SpO2 is read on scale 1; scale 2 (confirmed hypercapnic respiratory failure) is out of scope.
 */
export function news2Features(v: VitalSigns): number[] | null {
  const { respiratory_rate, spo2, on_oxygen, systolic_bp, pulse, consciousness, temperature_c } = v;
  if (
    respiratory_rate == null ||
    spo2 == null ||
    on_oxygen == null ||
    systolic_bp == null ||
    pulse == null ||
    consciousness == null ||
    temperature_c == null
  ) {
    return null;
  }
  return [respiratory_rate, spo2, on_oxygen ? 1 : 0, systolic_bp, pulse, consciousness === 'A' ? 0 : 1, temperature_c];
}
