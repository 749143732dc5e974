/**
 * The audit log on the real Kafka (issue 11's "done means"): entries and signed checkpoints appended to the audit
 * topic (isolated by VIGIL_TOPIC_PREFIX), `vigil audit verify` and `prove` run as the real CLI on it, the standalone
 * verifier checks the proofs; then a copy of the log with one entry edited and one checkpoint altered (what an
 * attacker with write access to the topic could produce) is verified and each is named. A copy with an entry
 * deleted, two reordered and one inserted is named at the first bad index.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { PlainProducer } from '../../adapters/kafka/producer.ts';
import { generateAuditKeys, KEY_FILES, loadHashKey, loadSignerKey, loadVerifierKey } from '../../audit/keys.ts';
import { appendOnce, openAuditLog } from '../../audit/log.ts';
import { readAll } from '../../audit/store.ts';
import { openKafkaAuditStore } from '../../audit/stores/kafka.ts';
import { createVerifier, type VerifyReport } from '../../audit/verify.ts';
import { ManualClock } from '../../runtime/clock.ts';
import { resolveEndpoints, TOPICS } from '../../runtime/endpoints.ts';
import { REPO, spawnNode, waitFor } from '../support/process.ts';
import { isolatedTopics, lastJsonLine, spawnVigil } from './helpers.ts';

const ENTRIES = 250;
const EVERY = 50;
const keyDir = mkdtempSync(join(tmpdir(), 'vigil-it-audit-'));
const brokers = resolveEndpoints().kafkaBrokers;
let prefix: string;
let topic: string;
let stored: unknown[];

beforeAll(async () => {
  const topics = await isolatedTopics('audit');
  prefix = topics.prefix;
  topic = topics.name(TOPICS.auditLog);
  generateAuditKeys(keyDir, 'vigil.it/audit');
  const log = await openAuditLog({
    store: openKafkaAuditStore({ brokers, topic }),
    clock: new ManualClock(),
    hashKey: loadHashKey(join(keyDir, KEY_FILES.hash)),
    signer: { key: loadSignerKey(join(keyDir, KEY_FILES.signer)), everyEntries: EVERY },
  });
  // Appends in flight together, as a busy interface makes them: indexes still follow call order.
  const appended = await Promise.all(
    Array.from({ length: ENTRIES }, (_, i) =>
      log.append({
        actor: `clinician-${i % 7}`,
        role: 'clinician',
        action: 'data.read',
        target: 'site:ward-7',
        purpose: 'treatment',
        read: { event_ids: [`e-${i}`] },
      }),
    ),
  );
  expect(appended.map((a) => a.index)).toEqual(Array.from({ length: ENTRIES }, (_, i) => i));
  await log.close();
  stored = await readAll(openKafkaAuditStore({ brokers, topic }));
  expect(stored).toHaveLength(ENTRIES + ENTRIES / EVERY);
}, 120_000);

afterAll(() => rmSync(keyDir, { recursive: true, force: true }));

async function vigil(args: string[], env: Record<string, string>): Promise<{ code: number | null; stdout: string }> {
  const child = spawnVigil([...args, '--pub', join(keyDir, KEY_FILES.verifier)], env);
  const done = await child.done;
  return { code: done.code, stdout: child.stdout() };
}

/** A copy of the stored log, changed by `edit`, on a fresh isolated topic namespace. */
async function tamperedCopy(label: string, edit: (records: unknown[]) => unknown[]): Promise<string> {
  const copy = await isolatedTopics(label);
  const producer = new PlainProducer(brokers);
  await producer.connect();
  try {
    await producer.send(
      edit(structuredClone(stored)).map((record, i) => ({
        topic: copy.name(TOPICS.auditLog),
        partition: 0,
        key: String(i),
        value: Buffer.from(JSON.stringify(record)),
      })),
    );
  } finally {
    await producer.disconnect();
  }
  return copy.prefix;
}

/** Position in `stored` of entry i (a checkpoint follows every EVERY entries). */
const at = (i: number) => i + Math.floor(i / EVERY);

describe('the audit log on Kafka', () => {
  it('verifies, and its proofs check out in the standalone verifier', async () => {
    const verified = await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: prefix });
    expect(verified.code).toBe(0);
    expect(lastJsonLine<VerifyReport>(verified.stdout)).toMatchObject({
      ok: true,
      entries: ENTRIES,
      checkpoints: ENTRIES / EVERY,
      verified_size: ENTRIES,
      first_bad_index: null,
    });
    for (const args of [
      ['prove', '123'],
      ['prove', '--consistency', '100'],
    ]) {
      const proof = await vigil(['audit', ...args, '--json'], { VIGIL_TOPIC_PREFIX: prefix });
      expect(proof.code).toBe(0);
      const file = join(keyDir, `${args.join('-')}.json`);
      writeFileSync(file, proof.stdout);
      const checked = spawnNode(
        join(REPO, 'tools/audit-verifier/verify.mjs'),
        ['--key', join(keyDir, KEY_FILES.verifier), file],
        {},
      );
      expect((await checked.done).code).toBe(0);
      expect(lastJsonLine<{ ok: boolean; tree_size: number }>(checked.stdout())).toMatchObject({
        ok: true,
        tree_size: ENTRIES,
      });
    }
  });

  it('names an edited entry and an edited checkpoint', async () => {
    const copy = await tamperedCopy('audit-edited', (records) => {
      const entry = records[at(77)] as { entry: { actor: string } };
      entry.entry.actor = 'mallory';
      const checkpoint = records[at(150) - 1] as { kind: string; note: string };
      expect(checkpoint.kind).toBe('checkpoint');
      checkpoint.note = checkpoint.note.replace('\n150\n', '\n149\n');
      return records;
    });
    const verified = await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: copy });
    expect(verified.code).toBe(1);
    const report = lastJsonLine<VerifyReport>(verified.stdout);
    expect(report).toMatchObject({ ok: false, entries: ENTRIES, first_bad_index: 77, first_bad_checkpoint: 1 });
    expect(report.problem).toBe('entry 77 was edited: entry 78 records a different hash for it');
    expect(report.problems.map((p) => p.problem)).toContain(
      'checkpoint 2 (after entry 149): signature does not verify',
    );
  });

  it('names a deleted, reordered or inserted entry at the first bad index', async () => {
    const cases: [string, (r: unknown[]) => unknown[], number][] = [
      ['audit-deleted', (r) => r.filter((_, i) => i !== at(30)), 30],
      ['audit-reordered', (r) => [...r.slice(0, at(60)), r[at(61)], r[at(60)], ...r.slice(at(62))], 60],
      [
        'audit-inserted',
        (r) => [
          ...r.slice(0, at(90)),
          { ...(r[at(90)] as object), entry: { ...(r[at(90)] as { entry: object }).entry, actor: 'mallory' } },
          ...r.slice(at(90)),
        ],
        90,
      ],
    ];
    for (const [label, edit, bad] of cases) {
      const copy = await tamperedCopy(label, edit);
      const report = lastJsonLine<VerifyReport>(
        (await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: copy })).stdout,
      );
      expect(report, label).toMatchObject({ ok: false, first_bad_index: bad });
    }
  });

  it('the signer as its own process signs what a keyless writer appended', async () => {
    const copy = await tamperedCopy('audit-signer', (records) => records);
    const copyTopic = `${copy}.${TOPICS.auditLog}`;
    const writer = await openAuditLog({
      store: openKafkaAuditStore({ brokers, topic: copyTopic }),
      clock: new ManualClock(),
      hashKey: loadHashKey(join(keyDir, KEY_FILES.hash)),
    });
    expect(writer.size).toBe(ENTRIES);
    const enrol = {
      actor: 'svc-gateway',
      role: 'operator',
      action: 'device.enrol',
      target: 'device:h:00ff',
      purpose: 'change',
    };
    for (let i = 0; i < 20; i++) {
      await writer.append(enrol);
    }
    const before = lastJsonLine<VerifyReport>(
      (await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: copy })).stdout,
    );
    expect(before).toMatchObject({ ok: true, entries: ENTRIES + 20, verified_size: ENTRIES, unsigned_tail: 20 });
    const signer = spawnVigil(['audit', 'checkpoint', '--key', join(keyDir, KEY_FILES.signer)], {
      VIGIL_TOPIC_PREFIX: copy,
    });
    expect((await signer.done).code).toBe(0);
    expect(signer.stdout()).toMatch(new RegExp(`^signed:\nvigil.it/audit\n${ENTRIES + 20}\n`));
    // The signer never claims the log: the writer, open all along, keeps appending.
    for (let i = 0; i < 5; i++) {
      await writer.append(enrol);
    }
    // At a fixed cadence, the signer follows the log live and signs what arrives, until it is stopped.
    const cadence = spawnVigil(['audit', 'checkpoint', '--every', '1', '--key', join(keyDir, KEY_FILES.signer)], {
      VIGIL_TOPIC_PREFIX: copy,
    });
    for (let i = 0; i < 10; i++) await writer.append(enrol);
    const verifiedSize = async () => {
      const verifier = createVerifier(loadVerifierKey(join(keyDir, KEY_FILES.verifier)));
      for (const record of await readAll(openKafkaAuditStore({ brokers, topic: copyTopic, writer: false })))
        verifier.add(record);
      return verifier.finish().report.verified_size;
    };
    await waitFor(
      'the cadence signer to sign the new entries',
      async () => (await verifiedSize()) === ENTRIES + 35,
      60_000,
      1_000,
    );
    cadence.child.kill('SIGTERM');
    expect((await cadence.done).code).toBe(0);
    await writer.close();
    const after = lastJsonLine<VerifyReport>(
      (await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: copy })).stdout,
    );
    expect(after).toMatchObject({ ok: true, entries: ENTRIES + 35, verified_size: ENTRIES + 35, unsigned_tail: 0 });
  });

  it('one writer at a time: a second writer fences the first, and racing one-shot writers stay gap-free', async () => {
    const { prefix: racePrefix, name } = await isolatedTopics('audit-race');
    const raceTopic = name(TOPICS.auditLog);
    const hashKey = loadHashKey(join(keyDir, KEY_FILES.hash));
    const open = () =>
      openAuditLog({ store: openKafkaAuditStore({ brokers, topic: raceTopic }), clock: new ManualClock(), hashKey });
    const entry = (actor: string) => ({
      actor,
      role: 'analyst',
      action: 'data.read',
      target: 'site:ward-7',
      purpose: 'surveillance',
    });

    const first = await open();
    expect((await first.append(entry('first'))).index).toBe(0);
    const second = await open();
    await expect(first.append(entry('first'))).rejects.toMatchObject({ code: 'KAFKA_FENCED' });
    expect((await second.append(entry('second'))).index).toBe(1);
    await first.close();
    await second.close();

    // Three one-shot writers (a CLI read each), five entries each, all at once.
    const indexes = (
      await Promise.all(
        ['a', 'b', 'c'].map(async (actor) => {
          const got: number[] = [];
          for (let i = 0; i < 5; i++) got.push((await appendOnce(open, entry(actor), 20)).index);
          return got;
        }),
      )
    ).flat();
    expect([...indexes].sort((x, y) => x - y)).toEqual(Array.from({ length: 15 }, (_, i) => i + 2));
    const report = lastJsonLine<VerifyReport>(
      (await vigil(['audit', 'verify', '--json'], { VIGIL_TOPIC_PREFIX: racePrefix })).stdout,
    );
    expect(report).toMatchObject({ ok: true, entries: 17 });
  });
});
