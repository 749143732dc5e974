import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import alerts from '../pipelines/alerts.ts';
import vitals from '../pipelines/vitals.ts';
import { codeProblems, emittedCodes, OPERATORS, readmeReasonCodes, render } from './generate-operator-docs.ts';

const README = readFileSync(new URL('../README.md', import.meta.url), 'utf8');
const byName = (name: string) => OPERATORS.find((op) => op.name === name)!;

describe('operators own their reason codes', () => {
  it('declarations, sources, runtime/errors.ts and the README agree', () => {
    expect(codeProblems()).toEqual([]);
  });

  it('reads what each operator emits from its source', () => {
    expect(emittedCodes('validate')).toEqual([
      'MISSING_PROVENANCE',
      'INVALID_EVENT_ID',
      'PAYLOAD_TYPE_MISMATCH',
      'VALUE_OUT_OF_RANGE',
      'CLOCK_SKEW',
      'STALE_EVENT',
      'NOT_FROM_GATEWAY',
      'INTEGRITY_MISMATCH',
    ]);
    expect(emittedCodes('dedupe')).toEqual(['SEQUENCE_TOO_OLD']);
    expect(emittedCodes('detect-drift')).toEqual([]);
  });

  it('fails when an operator emits a code it does not declare, or declares one it never emits', () => {
    const emitted = (name: string) => (name === 'dedupe' ? ['SEQUENCE_TOO_OLD', 'CLOCK_SKEW'] : emittedCodes(name));
    expect(codeProblems(OPERATORS, emitted, README)).toEqual([
      'operators/dedupe emits CLOCK_SKEW but does not declare it (config.ts)',
    ]);
    const silent = (name: string) => (name === 'score' ? [] : emittedCodes(name));
    expect(codeProblems(OPERATORS, silent, README)).toEqual([
      'operators/score declares SCORING_FAILED but never emits it',
    ]);
  });

  it('fails when a declared code is filed under another stage, or a table code has no operator', () => {
    const moved = OPERATORS.map((op) =>
      op.name === 'dedupe'
        ? { ...op, codes: { stage: 'dedupe' as const, reasonCodes: ['SCORING_FAILED' as const] } }
        : op,
    );
    const emitted = (name: string) => (name === 'dedupe' ? ['SCORING_FAILED'] : emittedCodes(name));
    expect(codeProblems(moved, emitted, README)).toEqual([
      'operators/dedupe declares SCORING_FAILED under stage dedupe; runtime/errors.ts files it under score',
      'runtime/errors.ts files SEQUENCE_TOO_OLD under dedupe; no operator declares it',
    ]);
  });

  it("fails when the README's table drifts from the one table", () => {
    const drifted = README.replace('| dedupe   | `SEQUENCE_TOO_OLD`', '| dedupe   | `SEQUENCE_TOO_OLD` `SEQUENCE_GAP`');
    expect(readmeReasonCodes(drifted).get('dedupe')).toEqual(['SEQUENCE_TOO_OLD', 'SEQUENCE_GAP']);
    expect(codeProblems(OPERATORS, emittedCodes, drifted)).toEqual([
      'README.md reason codes for dedupe: `SEQUENCE_TOO_OLD SEQUENCE_GAP`, the table has `SEQUENCE_TOO_OLD`',
    ]);
  });

  it('each operator in the pipelines files its dead letters under the stage it declares', () => {
    const operators = [...vitals.operators, ...alerts.operators];
    expect(operators.length).toBeGreaterThanOrEqual(OPERATORS.length);
    for (const operator of operators) expect(operator.stage, operator.name).toBe(byName(operator.name).codes.stage);
  });

  it('documents each operator with its stage and reason codes', () => {
    const doc = render();
    expect(doc).toContain('`dedupe(config?)` — stage `dedupe`, reason codes `SEQUENCE_TOO_OLD`.');
    expect(doc).toContain('`detectDrift(config)` — stage `detect_drift`, rejects no record.');
  });
});
