/**
 * Outputs: what the worker does with a processed batch before Kafka (run: `vigil bench micro --only outputs`):
 * `materialise` (normalised values, inference values, dead letters, duplicates, raw plane) and the Avro encoding of
 * every output value in the Confluent wire format (the worker's RegistryValueEncoder, in-process registry ids), beside
 * the encoding it replaced (avsc's generic `Type#encode` into a scratch buffer, then a copy into a Buffer of its own:
 * `avscFramed` below, kept here to compare against). Pairs of the two run alternately, so a busy machine slows both;
 * every value is checked to encode to the same bytes both ways first.
 *
 * `--pairs N` (default 3) alternating before/after pairs; `--events N` (default 40,000).
 */
import { parseArgs } from 'node:util';
import type avsc from 'avsc';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { InProcessSchemaRegistry } from '../../adapters/registry/in-process.ts';
import gatedVitals from '../../pipelines/vitals.ts';
import { type BatchOutcome, Engine } from '../../runtime/engine.ts';
import { PipelineMetrics } from '../../runtime/metrics.ts';
import { materialise } from '../../runtime/outputs.ts';
import { RegistryValueEncoder } from '../../runtime/runners/encoder.ts';
import { acceptUngated } from '../../runtime/runners/ungated.ts';
import { decodeBatch } from '../../runtime/source.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const { values: flags } = parseArgs({
  options: { pairs: { type: 'string', default: '3' }, events: { type: 'string', default: '40000' } },
  strict: false,
});
const BATCH = 2000;
const SCHEMAS = ['normalised', 'inference', 'drift-histogram', 'dead-letter', 'duplicate'];

/** The encoding before the generated writers (adapters/avro/framing.ts encodeFramed as it was), for comparison. */
let scratch = Buffer.allocUnsafe(64 * 1024);
function avscFramed(schemaId: number, type: avsc.Type, value: unknown): Buffer {
  let end: number;
  for (;;) {
    end = type.encode(value, scratch, 5);
    if (end >= 0) break;
    scratch = Buffer.allocUnsafe(Math.max(scratch.length * 2, scratch.length - end + 5));
  }
  const out = Buffer.allocUnsafe(end);
  scratch.copy(out, 5, 5, end);
  out[0] = 0;
  out.writeInt32BE(schemaId, 1);
  return out;
}

// Simulator records are not gateway traffic: the chain without the gateway-provenance check.
const vitals = acceptUngated(gatedVitals);
const inputs = await stageInputs(Number(flags.events));
const engine = new Engine(vitals, new PipelineMetrics());
await engine.open(inputs.context);
const outcomes: BatchOutcome<unknown>[] = [];
for (let i = 0; i < Math.floor(inputs.raw.length / BATCH); i++) {
  outcomes.push(await engine.process(await decodeBatch(slice(inputs.raw, BATCH, i), inputs.decoder, Date.now())));
}
const registry = new InProcessSchemaRegistry();
const repo = loadSchemaRepo();
const encoder = await RegistryValueEncoder.create(registry, repo, SCHEMAS);
const before = new Map<string, { id: number; type: avsc.Type }>();
for (const name of SCHEMAS) {
  const subject = repo.get(name);
  before.set(name, {
    id: await registry.register(subject.spec.subject, subject.newest.schema),
    type: subject.newest.type,
  });
}
const encodeBefore = (schema: string, value: unknown) => {
  const entry = before.get(schema)!;
  return avscFramed(entry.id, entry.type, value);
};

report(
  await measure('outputs', 'materialise', BATCH, (i) =>
    materialise(vitals, outcomes[i % outcomes.length]!, Date.now()),
  ),
);
const emitted = outcomes.map((o) => materialise(vitals, o, Date.now()));
let values = 0;
for (const e of emitted) {
  for (const o of e.outputs) {
    for (const v of o.values) {
      values++;
      if (!encoder.encode(o.schema, v.value).equals(encodeBefore(o.schema, v.value))) {
        throw new Error(`the ${o.schema} writer's bytes differ from avsc's`);
      }
    }
  }
}
const perRecord = Math.round((values / (emitted.length * BATCH)) * 100) / 100;
const encodeAll = (encode: (schema: string, value: unknown) => Buffer) => (i: number) => {
  const e = emitted[i % emitted.length]!;
  for (const o of e.outputs) for (const v of o.values) encode(o.schema, v.value);
};
for (let p = 0; p < Number(flags.pairs); p++) {
  report({
    ...(await measure('outputs', 'avro encode of every output value, avsc (before)', BATCH, encodeAll(encodeBefore))),
    output_values_per_record: perRecord,
  });
  report({
    ...(await measure(
      'outputs',
      'avro encode of every output value',
      BATCH,
      encodeAll((s, v) => encoder.encode(s, v)),
    )),
    output_values_per_record: perRecord,
  });
}
await engine.close();
