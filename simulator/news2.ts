/**
 * NEWS2 (Royal College of Physicians, 2017; SpO2 scale 1) as a plain function: the simulator's own yardstick for the
 * spread of clinical states it produces (README, tests). The pipeline scores with its ONNX model, not this.
 */
import type { VitalSigns } from '../schemas/types.ts';

export type News2Band = 'low' | 'low-medium' | 'medium' | 'high';

export interface News2 {
  readonly total: number;
  /** Whether any single parameter scored 3. */
  readonly anyThree: boolean;
  readonly band: News2Band;
}

/** The NEWS2 score of a complete set of vital signs, or null when a parameter is missing. */
export function news2(v: VitalSigns): News2 | null {
  const { respiratory_rate: rr, spo2, on_oxygen: o2, systolic_bp: sbp, pulse: hr, consciousness, temperature_c } = v;
  if (rr === null || spo2 === null || o2 === null || sbp === null || hr === null || consciousness === null) return null;
  if (temperature_c === null) return null;
  const parts = [
    rr <= 8 ? 3 : rr <= 11 ? 1 : rr <= 20 ? 0 : rr <= 24 ? 2 : 3,
    spo2 <= 91 ? 3 : spo2 <= 93 ? 2 : spo2 <= 95 ? 1 : 0,
    o2 ? 2 : 0,
    sbp <= 90 ? 3 : sbp <= 100 ? 2 : sbp <= 110 ? 1 : sbp <= 219 ? 0 : 3,
    hr <= 40 ? 3 : hr <= 50 ? 1 : hr <= 90 ? 0 : hr <= 110 ? 1 : hr <= 130 ? 2 : 3,
    consciousness === 'A' ? 0 : 3,
    temperature_c <= 35 ? 3 : temperature_c <= 36 ? 1 : temperature_c <= 38 ? 0 : temperature_c <= 39 ? 1 : 2,
  ];
  const total = parts.reduce((a, b) => a + b, 0);
  const anyThree = parts.includes(3);
  const band: News2Band = total >= 7 ? 'high' : total >= 5 ? 'medium' : anyThree ? 'low-medium' : 'low';
  return { total, anyThree, band };
}
