/**
 * A plain-TypeScript NEWS2 (RCP 2017) scorer written straight from the chart, independent of the ONNX network's edge
 * table: the tests hold the model to it at every chart boundary and at random points.
 *
 * Chart cells are inclusive at the chart's resolution (integers; temperature to one decimal). A value that falls
 * between two adjacent cells (respiratory rate 20.5, temperature 35.05) scores as the more abnormal of the two, so a
 * reading is never under-scored. Values are compared as the float32 numbers the model sees.
 */
import { NEWS2_FEATURES, NEWS2_WIDTH } from './features.ts';

/** One chart cell: `[low, high]` inclusive, either end open (`-Infinity` / `Infinity`), and its points. */
export interface ChartCell {
  readonly low: number;
  readonly high: number;
  readonly points: number;
}

const cell = (low: number, high: number, points: number): ChartCell => ({ low, high, points });
const NEG = Number.NEGATIVE_INFINITY;
const POS = Number.POSITIVE_INFINITY;

/** The NEWS2 chart (scale 1 for SpO2), in feature order, each parameter's cells in ascending value order. */
export const NEWS2_CHART: Readonly<Record<(typeof NEWS2_FEATURES)[number], readonly ChartCell[]>> = {
  respiratory_rate: [cell(NEG, 8, 3), cell(9, 11, 1), cell(12, 20, 0), cell(21, 24, 2), cell(25, POS, 3)],
  spo2: [cell(NEG, 91, 3), cell(92, 93, 2), cell(94, 95, 1), cell(96, POS, 0)],
  on_oxygen: [cell(NEG, 0, 0), cell(1, POS, 2)],
  systolic_bp: [cell(NEG, 90, 3), cell(91, 100, 2), cell(101, 110, 1), cell(111, 219, 0), cell(220, POS, 3)],
  pulse: [cell(NEG, 40, 3), cell(41, 50, 1), cell(51, 90, 0), cell(91, 110, 1), cell(111, 130, 2), cell(131, POS, 3)],
  consciousness_not_alert: [cell(NEG, 0, 0), cell(1, POS, 3)],
  temperature_c: [
    cell(NEG, 35.0, 3),
    cell(35.1, 36.0, 1),
    cell(36.1, 38.0, 0),
    cell(38.1, 39.0, 1),
    cell(39.1, POS, 2),
  ],
};

export type RiskBandCode = 0 | 1 | 2 | 3;
export const RISK_BANDS = ['low', 'low_medium', 'medium', 'high'] as const;

/** Points for one parameter value (NaN for a non-finite value). */
export function chartPoints(cells: readonly ChartCell[], value: number): number {
  if (!Number.isFinite(value)) return Number.NaN;
  const x = Math.fround(value);
  for (let i = 0; i < cells.length; i++) {
    const c = cells[i]!;
    if (x < Math.fround(c.low)) {
      // In the gap below this cell (the first cell's low end is open, so i > 0 here): the more abnormal neighbour.
      return Math.max(c.points, cells[i - 1]!.points);
    }
    if (x <= Math.fround(c.high)) return c.points;
  }
  throw new Error('unreachable: the last cell is open-ended');
}

export interface News2Result {
  readonly subscores: number[];
  readonly score: number;
  readonly band: RiskBandCode;
}

/** Scores one feature vector in NEWS2_FEATURES order. */
export function news2Reference(features: readonly number[]): News2Result {
  if (features.length !== NEWS2_WIDTH) throw new Error(`expected ${NEWS2_WIDTH} features, got ${features.length}`);
  const subscores = NEWS2_FEATURES.map((name, i) => chartPoints(NEWS2_CHART[name], features[i]!));
  const score = subscores.reduce((a, b) => a + b, 0);
  const band: RiskBandCode = score >= 7 ? 3 : score >= 5 ? 2 : subscores.some((s) => s >= 3) ? 1 : 0;
  return { subscores, score, band };
}
