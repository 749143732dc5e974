import { describe, expect, it } from 'vitest';
import type { VitalSigns } from '../schemas/types.ts';
import { news2 } from './news2.ts';

const normal: VitalSigns = {
  respiratory_rate: 16,
  spo2: 97,
  on_oxygen: false,
  systolic_bp: 125,
  pulse: 70,
  consciousness: 'A',
  temperature_c: 37,
};

const score = (change: Partial<VitalSigns>) => news2({ ...normal, ...change })?.total;

describe('news2', () => {
  it('scores each parameter at the chart boundaries (REFERENCE.md)', () => {
    expect(score({})).toBe(0);
    expect([8, 9, 11, 12, 20, 21, 24, 25].map((rr) => score({ respiratory_rate: rr }))).toEqual([
      3, 1, 1, 0, 0, 2, 2, 3,
    ]);
    expect([91, 92, 93, 94, 95, 96].map((s) => score({ spo2: s }))).toEqual([3, 2, 2, 1, 1, 0]);
    expect(score({ on_oxygen: true })).toBe(2);
    expect([90, 91, 100, 101, 110, 111, 219, 220].map((b) => score({ systolic_bp: b }))).toEqual([
      3, 2, 2, 1, 1, 0, 0, 3,
    ]);
    expect([40, 41, 50, 51, 90, 91, 110, 111, 130, 131].map((h) => score({ pulse: h }))).toEqual([
      3, 1, 1, 0, 0, 1, 1, 2, 2, 3,
    ]);
    expect((['A', 'C', 'V', 'P', 'U'] as const).map((c) => score({ consciousness: c }))).toEqual([0, 3, 3, 3, 3]);
    expect([35.0, 35.1, 36.0, 36.1, 38.0, 38.1, 39.0, 39.1].map((t) => score({ temperature_c: t }))).toEqual([
      3, 1, 1, 0, 0, 1, 1, 2,
    ]);
  });

  it('bands the total, with a single 3 making low-medium', () => {
    expect(news2(normal)?.band).toBe('low');
    expect(news2({ ...normal, pulse: 95, temperature_c: 38.5 })?.band).toBe('low');
    expect(news2({ ...normal, spo2: 90 })?.band).toBe('low-medium');
    expect(news2({ ...normal, spo2: 93, respiratory_rate: 22, pulse: 95 })?.band).toBe('medium');
    expect(news2({ ...normal, spo2: 90, respiratory_rate: 26, pulse: 115 })?.band).toBe('high');
    expect(news2({ ...normal, systolic_bp: null })).toBeNull();
  });
});
