/**
 * The wire format end to end, on the real local stack (Kafka + Apicurio's Confluent-compatible API):
 * envelopes framed with the registry's schema ids go through a real topic with node-rdkafka, come back, and decode
 * identically through the registry's own client (`@kafkajs/confluent-schema-registry`) and through Vigil's decoder.
 * Then `vigil schemas register` and `vigil schemas check --registry` against the live registry.
 */
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SchemaType } from '@kafkajs/confluent-schema-registry';
import Kafka from 'node-rdkafka';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createEnvelopeDecoder } from '../../adapters/avro/decoder.ts';
import { encodeFramed } from '../../adapters/avro/framing.ts';
import { loadSchemaRepo } from '../../adapters/avro/schemas.ts';
import { ConfluentSchemaRegistry } from '../../adapters/registry/confluent.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';

const endpoints = resolveEndpoints();
const registry = new ConfluentSchemaRegistry({ url: endpoints.schemaRegistryUrl });
const repo = loadSchemaRepo();
const envelope = repo.get('envelope');
const v1 = envelope.versions.find((v) => v.version === 1)!;
const v2 = envelope.versions.find((v) => v.version === 2)!;
const root = new URL('../../', import.meta.url).pathname;

const run = `${Date.now()}-${process.pid}`;
const topic = `vigil.test.registry-kafka.${run}`;
const subject = `${topic}-value`;
const scratchSubjects: string[] = [subject];

function fixtureValue(version: { type: { fromString(s: string): unknown } }, path: string): Record<string, unknown> {
  const json = readFileSync(join(repo.dir, 'fixtures', path), 'utf8');
  return JSON.parse(JSON.stringify(version.type.fromString(json))) as Record<string, unknown>;
}

function vigil(...args: string[]): { status: number | null; stdout: string; stderr: string } {
  const r = spawnSync(process.execPath, ['bin/vigil.js', ...args], { cwd: root, encoding: 'utf8', timeout: 120_000 });
  // A child killed by the timeout has no status: say so, with what it printed, in the assertion's message.
  const killed = r.error
    ? `\n[${r.error.message}; signal ${r.signal}; stdout: ${String(r.stdout ?? '').slice(-500)}]`
    : '';
  return { status: r.status, stdout: r.stdout, stderr: `${r.stderr}${killed}` };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, timeoutMs: number): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      last = error;
    }
    if (Date.now() > deadline) throw new Error(`${what} not ready after ${timeoutMs} ms: ${String(last)}`);
    await new Promise((r) => setTimeout(r, 1_000));
  }
}

function admin(): Kafka.IAdminClient {
  return Kafka.AdminClient.create({ 'metadata.broker.list': endpoints.kafkaBrokers, 'client.id': 'vigil-test-admin' });
}

async function deleteSubject(name: string): Promise<void> {
  const base = `${endpoints.schemaRegistryUrl}/subjects/${encodeURIComponent(name)}`;
  await fetch(base, { method: 'DELETE' });
  await fetch(`${base}?permanent=true`, { method: 'DELETE' });
}

async function produce(messages: Buffer[]): Promise<void> {
  const producer = new Kafka.Producer({
    'metadata.broker.list': endpoints.kafkaBrokers,
    'client.id': 'vigil-test-producer',
    dr_cb: true,
    'enable.idempotence': true,
  });
  await new Promise<void>((resolve, reject) => {
    producer.once('ready', () => resolve());
    producer.once('event.error', reject);
    producer.connect();
  });
  const delivered = new Promise<void>((resolve, reject) => {
    let left = messages.length;
    producer.on('delivery-report', (error) => {
      if (error) reject(error);
      else if (--left === 0) resolve();
    });
  });
  producer.setPollInterval(20);
  for (const [i, m] of messages.entries()) producer.produce(topic, 0, m, `dev-${i}`);
  await delivered;
  await new Promise<void>((resolve) => producer.disconnect(() => resolve()));
}

async function consume(count: number): Promise<Buffer[]> {
  const consumer = new Kafka.KafkaConsumer(
    {
      'metadata.broker.list': endpoints.kafkaBrokers,
      'group.id': `vigil-test-${run}`,
      'enable.auto.commit': false,
    },
    { 'auto.offset.reset': 'earliest' },
  );
  const values: Buffer[] = [];
  try {
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new Error(`only ${values.length} of ${count} messages within 60 s`)),
        60_000,
      );
      consumer.on('data', (message) => {
        if (message.value) values.push(message.value);
        if (values.length >= count) {
          clearTimeout(timer);
          resolve();
        }
      });
      consumer.once('event.error', reject);
      consumer.once('ready', () => {
        consumer.subscribe([topic]);
        consumer.consume();
      });
      consumer.connect();
    });
  } finally {
    await new Promise<void>((resolve) => consumer.disconnect(() => resolve()));
  }
  return values;
}

describe('registry + Kafka on the real stack', () => {
  beforeAll(async () => {
    await until(
      'schema registry',
      async () => ((await fetch(`${endpoints.schemaRegistryUrl}/subjects`)).ok ? true : undefined),
      240_000,
    );
    await until(
      'kafka topic creation',
      async () => {
        const client = admin();
        try {
          await new Promise<void>((resolve, reject) =>
            client.createTopic({ topic, num_partitions: 1, replication_factor: 1 }, 10_000, (error) =>
              error && error.code !== Kafka.CODES.ERRORS.ERR_TOPIC_ALREADY_EXISTS ? reject(error) : resolve(),
            ),
          );
          return true;
        } finally {
          client.disconnect();
        }
      },
      240_000,
    );
  });

  afterAll(async () => {
    const client = admin();
    await new Promise<void>((resolve) => client.deleteTopic(topic, 10_000, () => resolve()));
    client.disconnect();
    for (const s of scratchSubjects) await deleteSubject(s);
  });

  it('produces framed envelopes, consumes them, and decodes them identically through the client and Vigil', async () => {
    const id1 = await registry.register(subject, v1.schema);
    await registry.setCompatibility(subject, 'BACKWARD_TRANSITIVE');
    const id2 = await registry.register(subject, v2.schema);
    expect(id2).not.toBe(id1);
    expect((await registry.listVersions(subject)).map((v) => v.id)).toEqual([id1, id2]);

    const payloads = ['vital-signs', 'device-status', 'alarm', 'config-change'];
    const v2Values = payloads.map((p) => fixtureValue(v2, `envelope/v2/${p}.json`));
    const v1Value = fixtureValue(v1, 'envelope/v1/vital-signs.json');

    // Vigil's framing and the registry client's framing are the same bytes.
    const framed = v2Values.map((value) => encodeFramed(id2, v2.type, value));
    for (const [i, value] of v2Values.entries()) {
      expect((await registry.client.encode(id2, value)).equals(framed[i]!)).toBe(true);
    }
    const framedV1 = encodeFramed(id1, v1.type, v1Value);

    await produce([...framed, framedV1]);
    const received = await consume(framed.length + 1);
    expect(received.map((b) => b.toString('hex'))).toEqual([...framed, framedV1].map((b) => b.toString('hex')));

    const decoder = createEnvelopeDecoder(registry);
    const results = await decoder.decodeBatch(received);
    for (const [i, bytes] of received.entries()) {
      const ours = results[i]!;
      expect(ours.ok, `message ${i}`).toBe(true);
      if (!ours.ok) continue;
      // The registry client, asked to read into the same reader schema (newest envelope).
      const theirs = await registry.client.decode(bytes, {
        [SchemaType.AVRO]: { readerSchema: envelope.newest.schema as never },
      });
      expect(JSON.parse(JSON.stringify(ours.value))).toEqual(JSON.parse(JSON.stringify(theirs)));
    }
    // Written as v2: exactly the fixture plus the newer versions' defaults. Written as v1: plus v2's defaults too.
    const newerThanV2 = { signed_event: null, gateway_id: null };
    expect(JSON.parse(JSON.stringify(results[0]!.ok && results[0]!.value))).toEqual({ ...v2Values[0], ...newerThanV2 });
    const last = results.at(-1)!;
    expect(last.ok && last.schemaId).toBe(id1);
    expect(JSON.parse(JSON.stringify(last.ok && last.value))).toEqual({
      ...v1Value,
      sequence: null,
      nonce: null,
      device_cert_fingerprint: null,
      key_id: null,
      device_batch: null,
      patient_subgroup: null,
      transformation_version: null,
      parent_event_ids: [],
      ...newerThanV2,
    });
    // An id the registry does not have is a dead letter, not an outage.
    const unknown = await decoder.decode(encodeFramed(2_000_000_000, v2.type, v2Values[0]));
    expect(unknown.ok ? 'ok' : unknown.code).toBe('UNKNOWN_SCHEMA_ID');
  });

  it('a framed id of a non-envelope Avro schema, or of a JSON Schema, is SCHEMA_NOT_ENVELOPE', async () => {
    const other = `${subject}-other`;
    const json = `${subject}-json`;
    scratchSubjects.push(other, json);
    const inference = repo.get('inference').newest;
    const inferenceId = await registry.register(other, inference.schema);
    const res = await fetch(`${endpoints.schemaRegistryUrl}/subjects/${encodeURIComponent(json)}/versions`, {
      method: 'POST',
      headers: { 'content-type': 'application/vnd.schemaregistry.v1+json' },
      body: JSON.stringify({
        schemaType: 'JSON',
        schema: JSON.stringify({
          $schema: 'http://json-schema.org/draft-07/schema#',
          type: 'object',
          properties: { level: { type: 'string' } },
        }),
      }),
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const jsonId = ((await res.json()) as { id: number }).id;

    const decoder = createEnvelopeDecoder(registry);
    const header = (id: number): Buffer => {
      const b = Buffer.alloc(5);
      b.writeInt32BE(id, 1);
      return b;
    };
    for (const [id, name] of [
      [inferenceId, 'vigil.clinical.Inference'],
      [jsonId, 'is not an Avro schema'],
    ] as const) {
      const result = await decoder.decode(Buffer.concat([header(id), Buffer.from([2, 0x61])]));
      expect(result.ok ? 'ok' : result.code, `id ${id}`).toBe('SCHEMA_NOT_ENVELOPE');
      expect(result.ok ? '' : result.detail).toContain(name);
    }
  });

  it('the registry refuses an incompatible envelope under BACKWARD_TRANSITIVE', async () => {
    const broken = JSON.parse(JSON.stringify(v2.schema)) as { fields: unknown[] };
    broken.fields.push({ name: 'ward_id', type: 'string' });
    await expect(registry.register(subject, broken as never)).rejects.toMatchObject({ code: 'SCHEMA_INCOMPATIBLE' });
  });

  it('vigil schemas register is idempotent, and vigil schemas check --registry passes afterwards', async () => {
    const first = vigil('schemas', 'register', '--json');
    expect(first.status, first.stderr).toBe(0);
    const ids = JSON.parse(first.stdout) as Record<string, { id: number; version: number }>;
    for (const s of repo.subjects) {
      expect(ids[s.spec.subject], s.spec.subject).toBeDefined();
      const versions = await registry.listVersions(s.spec.subject);
      expect(versions.length).toBeGreaterThanOrEqual(s.versions.length);
      expect(versions.find((v) => v.id === ids[s.spec.subject]!.id)?.version).toBe(ids[s.spec.subject]!.version);
      expect(await registry.getCompatibility(s.spec.subject)).toBe(s.spec.compatibility);
    }
    const before = await registry.listVersions(envelope.spec.subject);
    const second = vigil('schemas', 'register', '--json');
    expect(second.status, second.stderr).toBe(0);
    expect(JSON.parse(second.stdout)).toEqual(ids);
    expect(await registry.listVersions(envelope.spec.subject)).toEqual(before);

    const text = vigil('schemas', 'register');
    expect(text.stdout).toMatch(
      /envelope -> vigil\.telemetry\.raw-value: v1 id \d+ as version \d+ \(already registered\)/,
    );

    const check = vigil('schemas', 'check', '--registry');
    expect(check.status, check.stderr).toBe(0);
    expect(check.stdout).toContain(
      `envelope in the registry: repo v${envelope.newest.version} against registry versions`,
    );
  });

  it('vigil schemas check --registry fails on a registered version the newest repo schema cannot read', async () => {
    const name = `vigil.test.drift.${run}`;
    const registered = `${name}-value`;
    scratchSubjects.push(registered);
    // The registry already holds a version (registered out of band) whose field the repo later typed differently.
    await registry.register(registered, {
      type: 'record',
      name: 'Reading',
      namespace: 'vigil.test',
      fields: [{ name: 'level', type: 'string' }],
    });
    const dir = mkdtempSync(join(tmpdir(), 'vigil-schemas-'));
    try {
      mkdirSync(join(dir, 'reading'));
      writeFileSync(
        join(dir, 'subjects.json'),
        JSON.stringify({
          subjects: [{ name: 'reading', subject: registered, topic: name, compatibility: 'BACKWARD_TRANSITIVE' }],
        }),
      );
      writeFileSync(
        join(dir, 'reading', 'v1.avsc'),
        JSON.stringify({
          type: 'record',
          name: 'Reading',
          namespace: 'vigil.test',
          fields: [{ name: 'level', type: 'int' }],
        }),
      );
      const offline = vigil('schemas', 'check', '--dir', dir);
      expect(offline.status, offline.stderr).toBe(0);
      const online = vigil('schemas', 'check', '--dir', dir, '--registry');
      expect(online.status).toBe(1);
      expect(online.stderr).toContain('schemas check failed: 1 problem(s)');
      expect(online.stdout).toMatch(
        /FAIL {2}reading in the registry: .*\n {10}repo v1 cannot read data written with registry version 1 \(id \d+\): field Reading\.level: cannot read "string" as "int"/,
      );
      const json = vigil('schemas', 'check', '--dir', dir, '--registry', '--json');
      expect(json.status).toBe(1);
      expect(JSON.parse(json.stdout).problems).toEqual([
        expect.stringMatching(new RegExp(`^reading \\(${registered.replace(/\./g, '\\.')}\\): repo v1 cannot read`)),
      ]);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
