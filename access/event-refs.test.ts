/**
 * Per-event references of a read: the companion entries' shape and cap, that they never carry an event id, that a
 * read scope appends them at consecutive indexes after the read entry through the real file audit store (fake clock),
 * that an appender unable to record them fails the read closed, and that trace's viewsOf finds the reader by them.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashKeyOf, keyedDigest } from '../audit/entry.ts';
import { generateAuditKeys, KEY_FILES, loadHashKey } from '../audit/keys.ts';
import { AUDIT_FILE } from '../audit/stores/file.ts';
import { eventRef, viewsOf } from '../evidence/views.ts';
import { ManualClock } from '../runtime/clock.ts';
import { accessAuditAppender } from './cli.ts';
import {
  EVENT_REFS_PER_ENTRY,
  eventIdsOf,
  eventRefDigest,
  eventRefEntries,
  namedEventRefs,
  readActionOf,
} from './event-refs.ts';
import type { Authenticator } from './principals.ts';
import { auditedQuery } from './read.ts';

const key = hashKeyOf(Buffer.alloc(32, 7));
const read = { actor: 'nurse-1', role: 'clinician', action: 'alerts.list', purpose: 'treatment' };
const ids = (n: number) => Array.from({ length: n }, (_, i) => `01EVENT${String(i).padStart(19, '0')}`);

describe('eventIdsOf', () => {
  it('collects event_id and event_ids, unique, in row order, ignoring other columns', () => {
    const rows = [
      { alert_id: 'a', event_ids: ['e2', 'e1'] },
      { event_id: 'e3', inference_ids: ['i1'] },
      { event_ids: ['e1', ''], event_id: null },
      { site_id: 's' },
    ];
    expect(eventIdsOf(rows)).toEqual(['e2', 'e1', 'e3']);
  });
});

describe('eventRefEntries', () => {
  it('packs 8 keyed references per companion, names no id, and commits to all in the read details', () => {
    const events = ids(19);
    const { details, companions } = eventRefEntries(key, read, events);
    expect(companions.map((c) => namedEventRefs(c.target).length)).toEqual([8, 8, 3]);
    expect(companions.every((c) => c.action === 'alerts.list.events' && c.target.length <= 300)).toBe(true);
    expect(companions.flatMap((c) => namedEventRefs(c.target))).toEqual(events.map((e) => eventRefDigest(key, e)));
    expect(details).toEqual({ event_refs: events.map((e) => eventRefDigest(key, e)), named: 19 });
    expect(companions[0]).toMatchObject({ actor: 'nurse-1', role: 'clinician', purpose: 'treatment' });
    const text = JSON.stringify(companions);
    for (const e of events) expect(text).not.toContain(e);
    // The reference is trace's: targetRef(key, 'event', id) without its prefix.
    expect(`event:h:${eventRefDigest(key, events[0]!)}`).toBe(eventRef(key, events[0]!));
  });

  it('past the cap, one more companion counts and digests the rest, naming none of them', () => {
    const events = ids(2 * EVENT_REFS_PER_ENTRY + 5);
    const { details, companions } = eventRefEntries(key, read, events, 2 * EVENT_REFS_PER_ENTRY);
    expect(companions).toHaveLength(3);
    const rest = events.slice(2 * EVENT_REFS_PER_ENTRY).map((e) => eventRefDigest(key, e));
    expect(companions[2]!.target).toBe(`events:rest n=5 h:${keyedDigest(key, rest).slice(0, 32)}`);
    expect(namedEventRefs(companions[2]!.target)).toEqual([]);
    expect(details.named).toBe(16);
    expect(details.event_refs).toHaveLength(21);
  });

  it('reads back only well-formed targets and companion actions', () => {
    expect(namedEventRefs('alerts:list {"open":false}')).toEqual([]);
    expect(namedEventRefs('events:h:xyz')).toEqual([]);
    expect(readActionOf('alerts.list.events')).toBe('alerts.list');
    expect(readActionOf('alerts.list')).toBeNull();
  });
});

describe('an audited read of event rows (file audit store, fake clock)', () => {
  let dir: string;
  const principal = { name: 'nurse-1', roles: ['clinician'] as const, sites: ['site-a'] };
  const authenticator = { authenticate: async () => principal } as unknown as Authenticator;
  const rows = [
    { alert_id: 'a1', site_id: 'site-a', event_ids: ids(10) },
    { alert_id: 'a2', site_id: 'site-a', event_ids: ids(3) },
  ];
  const store = { query: async <T>() => rows as unknown as T[] };

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'vigil-event-refs-'));
    generateAuditKeys(join(dir, 'keys'), 'vigil.test/event-refs');
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('appends the read then its companions at consecutive indexes; trace finds the reader by each event', async () => {
    const hashKeyFile = join(dir, 'keys', KEY_FILES.hash);
    const clock = new ManualClock(1_767_225_600_000);
    const audit = accessAuditAppender({ auditDir: join(dir, 'audit'), auditHashKey: hashKeyFile }, clock);
    const { auditIndex } = await auditedQuery(
      { audit, authenticator, credential: 'token', store },
      {
        action: 'alerts.list',
        target: 'alerts:list',
        sql: 'SELECT 1 FROM clinical_alerts_current',
        purpose: 'treatment',
      },
    );
    const records = readFileSync(join(dir, 'audit', AUDIT_FILE), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as { kind: string; entry: Record<string, unknown> });
    expect(records.map((r) => [r.entry.index, r.entry.action])).toEqual([
      [0, 'alerts.list'],
      [1, 'alerts.list.events'],
      [2, 'alerts.list.events'],
    ]);
    expect(auditIndex).toBe(0);
    expect(records[0]!.entry.details_sha256).toMatch(/^[0-9a-f]{64}$/); // commits to all 10 references
    const hashKey = loadHashKey(hashKeyFile);
    const views = viewsOf(records, eventRef(hashKey, ids(10)[9]!));
    expect(views).toEqual({
      views: [
        {
          principal: 'nurse-1',
          role: 'clinician',
          at: '2026-01-01T00:00:00.000Z',
          purpose: 'treatment',
          via: 'alerts.list',
        },
      ],
      indexes: [2],
    });
    expect(viewsOf(records, eventRef(hashKey, 'never-returned')).views).toEqual([]);
  });

  it('an appender that cannot record event references fails the read: nothing shown', async () => {
    const plain = async () => ({ index: 0 });
    await expect(
      auditedQuery(
        { audit: plain, authenticator, credential: 'token', store },
        {
          action: 'alerts.list',
          target: 'alerts:list',
          sql: 'SELECT 1 FROM clinical_alerts_current',
          purpose: 'treatment',
        },
      ),
    ).rejects.toThrow(/cannot record the events a read returns/);
  });
});
