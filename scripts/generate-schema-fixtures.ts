/**
 * Writes the golden fixtures of schema versions that have none yet: `schemas/avro/fixtures/<name>/v<N>/<case>.avro`
 * (Avro binary body written with vN) and `<case>.json` (the same record, Avro JSON encoding). See
 * adapters/avro/fixtures.ts for what they promise and how `vigil schemas check` uses them.
 *
 * Golden means frozen: a version's fixtures are written once, when the version is new, and committed. Existing ones
 * are never rewritten unless `--force` (only for a version that was never released). `--check` verifies instead.
 *
 * The envelope's cases are hand-written (one per payload type, realistic values, fake pseudonyms); every other subject
 * gets deterministic cases derived from its schema ("full": every optional field set; "minimal": every optional
 * field null or empty; one case per extra branch of a union of records).
 *
 *   npm run schemas:fixtures [-- --force] [-- --check] [-- --dir <schema dir>]
 */
import { spawnSync } from 'node:child_process';
import { createHash, createPrivateKey, sign } from 'node:crypto';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import type avsc from 'avsc';
import { fixtureLabel, fixturesDir, verifyGoldenFixtures } from '../adapters/avro/fixtures.ts';
import { loadSchemaRepo } from '../adapters/avro/schemas.ts';

const args = process.argv.slice(2);
const force = args.includes('--force');
const check = args.includes('--check');
const dirIndex = args.indexOf('--dir');
const repo = loadSchemaRepo(dirIndex >= 0 ? args[dirIndex + 1] : undefined);

if (check) {
  const { outcomes, missing } = verifyGoldenFixtures(repo);
  const problems = [
    ...outcomes.flatMap((o) => (o.problem ? [o.problem] : [])),
    ...missing.map((m) => `${m}: no fixtures`),
  ];
  for (const p of problems) console.error(p);
  console.log(
    `${outcomes.length - problems.length + missing.length} of ${outcomes.length} fixtures decode as promised`,
  );
  process.exit(problems.length > 0 ? 1 : 0);
}

const T0 = Date.UTC(2026, 0, 15, 8, 30, 0);
const sha = (s: string): string => createHash('sha256').update(s).digest('hex');

function envelopeV1(i: number, eventType: string, payloadName: string, payload: object): Record<string, unknown> {
  return {
    event_id: `01KF0${String(i).padStart(2, '0')}Q6Y4M3N2P1R0S9T8V7W`,
    device_id: `dev-fixture-${String(100 + i)}`,
    patient_ref: `psn:k1:clinical:${sha(`fixture-patient-${i}`).slice(0, 32)}`,
    site_id: 'site-north-ward-3',
    event_type: eventType,
    observed_at: T0 + i * 60_000,
    received_at: T0 + i * 60_000 + 850,
    firmware_version: '4.2.1',
    model_version: i % 2 === 0 ? 'ews-ondevice-1.3.0' : null,
    schema_version: 'telemetry-envelope-v1',
    integrity_hash: `sha256:${sha(`fixture-raw-${i}`)}`,
    consent_context: 'care-delivery',
    processing_policy: 'clinical-standard',
    payload: { [`vigil.telemetry.payload.${payloadName}`]: payload },
  };
}

const PAYLOADS: [string, string, string, object][] = [
  [
    'vital-signs',
    'vital_signs',
    'VitalSigns',
    {
      respiratory_rate: 18,
      spo2: 95,
      on_oxygen: false,
      systolic_bp: 118,
      pulse: 84,
      consciousness: 'A',
      temperature_c: 37.2,
    },
  ],
  [
    'device-status',
    'device_status',
    'DeviceStatus',
    {
      state: 'degraded',
      battery_pct: 17,
      signal_dbm: -91,
      calibration_state: 'stale',
      last_calibrated_at: T0 - 40 * 86_400_000,
    },
  ],
  ['alarm', 'alarm', 'Alarm', { alarm_code: 'SPO2_LOW', category: 'physiological', priority: 'high', active: true }],
  [
    'config-change',
    'config_change',
    'ConfigChange',
    { parameter: 'spo2_alarm_low', old_value: '90', new_value: '88', changed_by: 'clinician' },
  ],
];

/**
 * A device's signed event as a gateway stores it in envelope v3: EdDSA over the payload (deterministic, so a fixture
 * written twice is the same), with a key derived from a fixed seed; kid is a stand-in certificate fingerprint.
 */
const FIXTURE_DEVICE_KEY = createPrivateKey({
  key: Buffer.concat([
    Buffer.from('302e020100300506032b657004220420', 'hex'),
    Buffer.from(sha('fixture-device-key'), 'hex'),
  ]),
  format: 'der',
  type: 'pkcs8',
});

function signedFixture(envelope: Record<string, unknown>, kid: string): Record<string, unknown> {
  const {
    patient_ref,
    site_id,
    consent_context,
    received_at,
    integrity_hash,
    device_cert_fingerprint,
    key_id,
    ...rest
  } = envelope;
  // The NDJSON shape: the payload as a plain object, not wrapped in its Avro union branch.
  const data = Object.values(rest.payload as Record<string, unknown>)[0];
  const payload = { ...rest, payload: data };
  const b64 = (text: string) => Buffer.from(text).toString('base64url');
  const input = `${b64(JSON.stringify({ alg: 'EdDSA', kid }))}.${b64(JSON.stringify(payload))}`;
  const jws = `${input}.${sign(null, Buffer.from(input), FIXTURE_DEVICE_KEY).toString('base64url')}`;
  return {
    ...envelope,
    integrity_hash: `sha256:${createHash('sha256').update(jws, 'utf8').digest('hex')}`,
    device_cert_fingerprint: kid,
    key_id: kid,
    signed_event: jws,
    gateway_id: 'gw-fixture-1',
  };
}

/** Hand-written cases, by subject and version. */
const HANDWRITTEN: Record<string, Record<number, Record<string, unknown>>> = {
  envelope: {
    1: Object.fromEntries(PAYLOADS.map(([c, t, n, p], i) => [c, envelopeV1(i + 1, t, n, p)])),
    2: {
      ...Object.fromEntries(
        PAYLOADS.map(([c, t, n, p], i) => [
          c,
          {
            ...envelopeV1(i + 11, t, n, p),
            schema_version: 'telemetry-envelope-v2',
            sequence: 4_000 + i,
            nonce: sha(`fixture-nonce-${i}`).slice(0, 24),
            device_cert_fingerprint: `sha256:${sha(`fixture-cert-${i}`)}`,
            key_id: `kid-fixture-${i}`,
            device_batch: 'LOT-2025-11-B',
            patient_subgroup: 'age_65_79',
            transformation_version: null,
            parent_event_ids: [],
          },
        ]),
      ),
      'vital-signs-partial': {
        ...envelopeV1(21, 'vital_signs', 'VitalSigns', {
          respiratory_rate: 26,
          spo2: null,
          on_oxygen: true,
          systolic_bp: null,
          pulse: 131,
          consciousness: 'C',
          temperature_c: null,
        }),
        schema_version: 'telemetry-envelope-v2',
        sequence: null,
        nonce: null,
        device_cert_fingerprint: null,
        key_id: null,
        device_batch: null,
        patient_subgroup: null,
        transformation_version: 'vitals@1/resample@1',
        parent_event_ids: ['01KF011Q6Y4M3N2P1R0S9T8V7W', '01KF012Q6Y4M3N2P1R0S9T8V7W'],
      },
    },
    3: {
      ...Object.fromEntries(
        PAYLOADS.map(([c, t, n, p], i) => [
          `gateway-${c}`,
          signedFixture(
            {
              ...envelopeV1(i + 31, t, n, p),
              schema_version: 'telemetry-envelope-v3',
              sequence: 7_000 + i,
              nonce: sha(`fixture-nonce-v3-${i}`).slice(0, 24),
              device_cert_fingerprint: null,
              key_id: null,
              device_batch: 'LOT-2025-11-B',
              patient_subgroup: 'age_65_79',
              transformation_version: null,
              parent_event_ids: [],
            },
            sha(`fixture-cert-v3-${i}`),
          ),
        ]),
      ),
      ungated: {
        ...envelopeV1(41, 'vital_signs', 'VitalSigns', PAYLOADS[0]![3]),
        schema_version: 'telemetry-envelope-v3',
        sequence: 12,
        nonce: null,
        device_cert_fingerprint: null,
        key_id: null,
        device_batch: null,
        patient_subgroup: null,
        transformation_version: null,
        parent_event_ids: [],
        signed_event: null,
        gateway_id: null,
      },
    },
  },
};

// --- derived cases for every other subject ---------------------------------------------------------------------------

interface Variant {
  readonly nulls: boolean;
  readonly branch: number;
}

function sampleOf(type: avsc.Type, v: Variant, hint: string): unknown {
  const t = type as unknown as {
    typeName: string;
    fields?: { name: string; type: avsc.Type }[];
    types?: avsc.Type[];
    itemsType?: avsc.Type;
    valuesType?: avsc.Type;
    symbols?: string[];
    size?: number;
    branchName?: string;
  };
  switch (t.typeName) {
    case 'null':
      return null;
    case 'boolean':
      return !v.nulls;
    case 'int':
      return 40 + (hint.length % 50);
    case 'long':
      return T0 + hint.length * 1_000;
    case 'float':
    case 'double':
      return 0.25 + (hint.length % 7);
    case 'string':
      return `sample-${hint}`;
    case 'bytes':
      return Buffer.from(`sample-${hint}`);
    case 'fixed':
      return Buffer.alloc(t.size ?? 0, 7);
    case 'enum':
      return t.symbols![(v.nulls ? 1 : 0) % t.symbols!.length];
    case 'array':
      return v.nulls ? [] : [sampleOf(t.itemsType!, v, hint), sampleOf(t.itemsType!, v, `${hint}-2`)];
    case 'map':
      return v.nulls ? {} : { [`${hint}-key`]: sampleOf(t.valuesType!, v, hint) };
    case 'record':
    case 'error':
      return Object.fromEntries(t.fields!.map((f) => [f.name, sampleOf(f.type, v, f.name)]));
    case 'union:unwrapped': {
      const types = t.types!;
      const nonNull = types.find((b) => b.typeName !== 'null');
      if (v.nulls && types.some((b) => b.typeName === 'null')) return null;
      return sampleOf(nonNull ?? types[0]!, v, hint);
    }
    case 'union:wrapped': {
      const types = t.types!;
      const nonNull = types.filter((b) => b.typeName !== 'null');
      if (v.nulls && nonNull.length < types.length) return null;
      const branch = nonNull[v.branch % nonNull.length]!;
      return { [branch.branchName!]: sampleOf(branch, v, hint) };
    }
    default:
      throw new Error(`no sample for Avro type ${t.typeName}`);
  }
}

function widestRecordUnion(type: avsc.Type): number {
  const t = type as unknown as { fields?: { type: avsc.Type }[] };
  let widest = 1;
  for (const f of t.fields ?? []) {
    const u = f.type as unknown as { typeName: string; types?: avsc.Type[] };
    if (u.typeName === 'union:wrapped') widest = Math.max(widest, u.types!.filter((b) => b.typeName !== 'null').length);
  }
  return widest;
}

function derivedCases(type: avsc.Type): Record<string, unknown> {
  const cases: Record<string, unknown> = {
    full: sampleOf(type, { nulls: false, branch: 0 }, 'full'),
    minimal: sampleOf(type, { nulls: true, branch: 0 }, 'minimal'),
  };
  for (let b = 1; b < widestRecordUnion(type); b++)
    cases[`branch-${b + 1}`] = sampleOf(type, { nulls: false, branch: b }, `branch${b}`);
  return cases;
}

// --- write -----------------------------------------------------------------------------------------------------------

let written = 0;
const writtenDirs: string[] = [];
for (const subject of repo.subjects) {
  for (const version of subject.versions) {
    const dir = join(fixturesDir(repo), subject.spec.name, `v${version.version}`);
    if (existsSync(dir) && !force) continue;
    const cases = HANDWRITTEN[subject.spec.name]?.[version.version] ?? derivedCases(version.type);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    for (const [name, value] of Object.entries(cases)) {
      const body = version.type.toBuffer(value); // throws when the case does not match its version: fix the case
      writeFileSync(join(dir, `${name}.avro`), body);
      writeFileSync(
        join(dir, `${name}.json`),
        `${JSON.stringify(JSON.parse(version.type.toString(value)), null, 2)}\n`,
      );
      written++;
    }
    writtenDirs.push(dir);
    console.log(`wrote ${relative(process.cwd(), dir)} (${Object.keys(cases).length} cases)`);
  }
}
if (writtenDirs.length > 0) {
  // The JSON in the repo's own style, so `biome check .` stays clean (the content is compared parsed, not as text).
  const biome = spawnSync('npx', ['biome', 'format', '--write', ...writtenDirs], { stdio: 'ignore' });
  if (biome.status !== 0) console.warn('could not run biome format on the new fixtures; run npm run format');
}
const { outcomes, missing } = verifyGoldenFixtures(repo);
const bad = outcomes.filter((o) => o.problem);
for (const o of bad) console.error(o.problem);
for (const m of missing) console.error(`${m}: no fixtures`);
console.log(
  `${written} fixtures written; ${outcomes.length - bad.length} of ${outcomes.length} decode as promised` +
    (bad.length > 0 ? ` (failing: ${bad.map((o) => fixtureLabel(o.fixture)).join(', ')})` : ''),
);
if (bad.length > 0 || missing.length > 0) process.exit(1);
