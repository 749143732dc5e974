/**
 * Generates docs/reference/operators.md from the operators' config modules: their schemas (zod, the only source of
 * truth for every option, its default, its description and its examples) and their declared stage and reason codes.
 * `--check` exits 1 when the checked-in file differs from what would be generated, or when the codes disagree
 * (`codeProblems`): an operator emits a code it does not declare or declares one it never emits, a declared code is
 * not in runtime/errors.ts under the operator's stage, a table code of an operator stage is declared by no operator,
 * or the README's reason-code table differs from the one table. `npm run check` runs it, so neither the reference nor
 * the codes can drift from the code.
 */
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { dedupeCodes, dedupeConfigSchema } from '../operators/dedupe/config.ts';
import { detectDriftCodes, detectDriftConfigSchema } from '../operators/detect-drift/config.ts';
import { raiseAlertsCodes, raiseAlertsConfigSchema } from '../operators/raise-alerts/config.ts';
import { scoreCodes, scoreConfigSchema } from '../operators/score/config.ts';
import { validateCodes, validateConfigSchema } from '../operators/validate/config.ts';
import {
  CODES,
  type OperatorCodes,
  REASON_CODES,
  type ReasonCode,
  reasonCodesOf,
  type Stage,
} from '../runtime/errors.ts';

/** An operator as documented: `name` is its folder under operators/. */
export interface DocumentedOperator {
  readonly name: string;
  readonly factory: string;
  readonly codes: OperatorCodes;
  readonly schema: z.ZodType;
}

export const OPERATORS: readonly DocumentedOperator[] = [
  { name: 'validate', factory: 'validate(config?)', codes: validateCodes, schema: validateConfigSchema },
  { name: 'dedupe', factory: 'dedupe(config?)', codes: dedupeCodes, schema: dedupeConfigSchema },
  { name: 'score', factory: 'score(config)', codes: scoreCodes, schema: scoreConfigSchema },
  { name: 'detect-drift', factory: 'detectDrift(config)', codes: detectDriftCodes, schema: detectDriftConfigSchema },
  { name: 'raise-alerts', factory: 'raiseAlerts(config)', codes: raiseAlertsCodes, schema: raiseAlertsConfigSchema },
];

const ROOT = join(dirname(fileURLToPath(import.meta.url)), '..');

/**
 * The reason codes an operator's source names (a quoted code in any of its modules but the config, where the
 * declaration itself lives, and its tests): what it may put on a rejection.
 */
export function emittedCodes(name: string): ReasonCode[] {
  const dir = join(ROOT, 'operators', name);
  const found = new Set<ReasonCode>();
  for (const file of readdirSync(dir)) {
    if (!file.endsWith('.ts') || file === 'config.ts' || /\.test(-d)?\.ts$/.test(file)) continue;
    const text = readFileSync(join(dir, file), 'utf8');
    for (const code of REASON_CODES) if (text.includes(`'${code}'`) || text.includes(`"${code}"`)) found.add(code);
  }
  return REASON_CODES.filter((code) => found.has(code));
}

/** The README's "Dead-letter reason codes" table: codes by stage, as written. */
export function readmeReasonCodes(readme: string): Map<string, string[]> {
  const section = readme.split(/^### Dead-letter reason codes\s*$/m)[1]?.split(/^#/m)[0] ?? '';
  const table = new Map<string, string[]>();
  for (const line of section.split('\n')) {
    const cells = line.split('|').map((c) => c.trim());
    const stage = cells[1];
    if (!stage || stage === 'stage' || /^-+$/.test(stage)) continue;
    table.set(
      stage,
      [...(cells[2] ?? '').matchAll(/`([A-Z][A-Z0-9_]+)`/g)].map((m) => m[1]!),
    );
  }
  return table;
}

/** Every disagreement between the operators' declarations, their sources, runtime/errors.ts and the README. */
export function codeProblems(
  operators: readonly DocumentedOperator[] = OPERATORS,
  emitted: (name: string) => readonly string[] = emittedCodes,
  readme: string = readFileSync(join(ROOT, 'README.md'), 'utf8'),
): string[] {
  const problems: string[] = [];
  const operatorStages = new Set<Stage>(operators.map((op) => op.codes.stage));
  for (const { name, codes } of operators) {
    const declared = new Set<string>(codes.reasonCodes);
    for (const code of emitted(name)) {
      if (!declared.has(code)) problems.push(`operators/${name} emits ${code} but does not declare it (config.ts)`);
    }
    const sources = new Set(emitted(name));
    for (const code of codes.reasonCodes) {
      if (!sources.has(code)) problems.push(`operators/${name} declares ${code} but never emits it`);
      const spec = (CODES as Record<string, { stage?: Stage }>)[code];
      if (spec?.stage !== codes.stage) {
        problems.push(
          `operators/${name} declares ${code} under stage ${codes.stage}; runtime/errors.ts files it under ${spec?.stage ?? 'no stage'}`,
        );
      }
    }
  }
  for (const stage of operatorStages) {
    const declared = new Set(operators.filter((op) => op.codes.stage === stage).flatMap((op) => op.codes.reasonCodes));
    for (const code of reasonCodesOf(stage)) {
      if (!declared.has(code)) problems.push(`runtime/errors.ts files ${code} under ${stage}; no operator declares it`);
    }
  }
  const written = readmeReasonCodes(readme);
  const stages = [...new Set(REASON_CODES.map((code) => (CODES[code] as { stage?: Stage }).stage))];
  for (const stage of stages) {
    if (!stage) continue;
    const want = reasonCodesOf(stage).join(' ');
    const got = (written.get(stage) ?? []).join(' ');
    if (got !== want) problems.push(`README.md reason codes for ${stage}: \`${got}\`, the table has \`${want}\``);
  }
  for (const stage of written.keys()) {
    if (!stages.includes(stage as Stage)) problems.push(`README.md lists a stage ${stage} that files no reason code`);
  }
  return problems;
}

const codeList = (codes: readonly string[]) =>
  codes.length === 0 ? 'rejects no record' : `reason codes ${codes.map((c) => `\`${c}\``).join(' ')}`;

interface JsonSchema {
  type?: string | string[];
  description?: string;
  default?: unknown;
  examples?: unknown[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  items?: JsonSchema;
  enum?: unknown[];
  anyOf?: JsonSchema[];
  minimum?: number;
  maximum?: number;
  pattern?: string;
}

const code = (v: unknown) => `\`${JSON.stringify(v)}\``;
const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\n/g, ' ');

function typeOf(s: JsonSchema): string {
  if (s.enum) return s.enum.map((v) => JSON.stringify(v)).join(' \\| ');
  if (s.anyOf) return s.anyOf.map(typeOf).join(' \\| ');
  if (s.type === 'array' && s.items) return `${typeOf(s.items)}[]`;
  if (s.type === 'object' && s.properties) return 'object';
  const base = Array.isArray(s.type) ? s.type.join(' \\| ') : (s.type ?? 'any');
  const range = [s.minimum !== undefined ? `>= ${s.minimum}` : '', s.maximum !== undefined ? `<= ${s.maximum}` : '']
    .filter(Boolean)
    .join(', ');
  return range ? `${base} (${range})` : base;
}

function rows(schema: JsonSchema, prefix = ''): string[] {
  const out: string[] = [];
  for (const [key, prop] of Object.entries(schema.properties ?? {})) {
    const path = `${prefix}${key}`;
    const required = schema.required?.includes(key) && prop.default === undefined;
    out.push(
      `| \`${path}\` | ${typeOf(prop)} | ${required ? 'required' : prop.default === undefined ? '—' : code(prop.default)} | ${cell(prop.description ?? '')} | ${(prop.examples ?? []).map(code).join(', ')} |`,
    );
    if (prop.type === 'object' && prop.properties) out.push(...rows(prop, `${path}.`));
  }
  return out;
}

export function render(): string {
  const parts = [
    '# Operator configuration reference',
    '',
    '<!-- Generated by scripts/generate-operator-docs.ts from operators/*/config.ts. Do not edit: `npm run docs:operators`. -->',
    '',
    'Every operator validates its configuration at start-up: unknown keys are errors, and a bad value stops the',
    'pipeline before the first record with a message naming the field.',
  ];
  for (const op of OPERATORS) {
    const json = z.toJSONSchema(op.schema, { io: 'input', unrepresentable: 'any' }) as JsonSchema;
    const { stage, reasonCodes } = op.codes;
    parts.push('', `## ${op.name}`, '', `\`${op.factory}\` — stage \`${stage}\`, ${codeList(reasonCodes)}.`);
    if (json.description) parts.push('', json.description);
    parts.push('', '| option | type | default | description | examples |', '|---|---|---|---|---|', ...rows(json));
  }
  return `${parts.join('\n')}\n`;
}

const target = join(ROOT, 'docs', 'reference', 'operators.md');
if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const text = render();
  let current = '';
  try {
    current = readFileSync(target, 'utf8');
  } catch {
    // not generated yet
  }
  if (process.argv.includes('--check')) {
    const problems = codeProblems();
    for (const problem of problems) console.error(`reason codes: ${problem}`);
    if (current !== text) console.error('stale: docs/reference/operators.md (run npm run docs:operators)');
    if (problems.length > 0 || current !== text) process.exit(1);
  } else if (current !== text) {
    writeFileSync(target, text);
    console.log('wrote docs/reference/operators.md');
  }
}
