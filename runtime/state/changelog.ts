/**
 * Keyed state inside the exactly-once scope, as Kafka Streams and Flink keep it (distributed mode).
 *
 * The working copy is in memory, one `MemoryStateBackend` per input partition (a Kafka Streams task's store). Every
 * change a batch makes is also kept as a *state change* — a key and value for a compacted changelog topic,
 * co-partitioned with the input — which the worker takes (`takeChanges`) and produces in the SAME Kafka transaction as
 * the batch's outputs and consumed offsets. So the changelog always says exactly what the committed outputs imply: a
 * crash of any process (worker, broker) can abort a transaction, but never leave state and outputs disagreeing, and no
 * external store's restart can lose a claim (the fault that made Redis-held state emit re-sends as new events).
 *
 * On assignment the runner drops the partition's copy and restores it from the changelog partition, read committed,
 * up to its end, before the partition's first record (`restore`). Owner tokens still matter: a batch dropped unsent at a
 * rebalance leaves its changes in memory; when it is read again, each record finds its own token (`own` / `new`), is
 * classified as before, and its change is logged again (compaction keeps one copy).
 *
 * This module is core: it knows the changelog's records, not Kafka (adapters/kafka/changelog.ts reads and writes them).
 *
 * Entries (UTF-8 strings; `\0` separates fields, the last field is parsed from the right so a key may hold anything):
 * - claim:    key `c\0<state>\0<key>`                 value `<owner>\0<expiresAt>`
 * - sequence: key `s\0<state>\0<stream>\0<sequence>`  value `<owner>\0<expiresAt>`
 * - value:    key `v\0<state>\0<key>`                 value `<expiresAt>\0<value>`, or a tombstone (null) for a delete
 * Keyed values are overwritten and deleted, so each is its own record and compaction keeps the latest. Claims and
 * accepted sequences are never overwritten (an event id is claimed once), so compaction would keep every one of them
 * anyway: they travel as one record per batch and partition, key `b\0<first owner>\0<last owner>\0<chunk>` and value a
 * JSON array `[key, value, key, value, ...]` of the entries above, at most MAX_BATCH_ENTRIES per record. That is one
 * produce call per batch instead of two per event (measured: the worker's CPU per event, bench/README.md); the topic's
 * retention (twice the longest TTL) removes them once every entry in them has expired.
 */
import type { Clock } from '../clock.ts';
import { VigilError } from '../errors.ts';
import type {
  ClaimRequest,
  ClaimResult,
  SequenceRequest,
  SequenceResult,
  StateBackend,
  StateDescriptor,
  ValueRequest,
  ValueWrite,
} from '../state.ts';
import { MemoryStateBackend } from './memory.ts';

/** One state change, for the changelog partition of the input partition that made it (value null: a tombstone). */
export interface StateChange {
  readonly partition: number;
  readonly key: string;
  readonly value: string | null;
}

export interface ChangelogStateOptions {
  readonly clock: Clock;
  /** Every state the pipeline's operators declare (`Operator.states`): a changelog entry of another name is skipped. */
  readonly states: readonly StateDescriptor[];
  /** Capacity of a state whose descriptor sets no `maxEntries`, per partition. */
  readonly defaultMaxEntries?: number;
}

export interface RestoreCounts {
  /** Changelog records applied. */
  applied: number;
  /** Records skipped: expired, of a state no operator declares any more, or unreadable. */
  skipped: number;
}

const SEP = '\u0000';
/** Entries per batch record: ~70 bytes each, so a record stays far below Kafka's default 1 MB message limit. */
export const MAX_BATCH_ENTRIES = 4_000;

/**
 * @example
 * const state = new ChangelogStateBackend({ clock: systemClock, states: [{ name: 'dedupe.event_id', ttlMs: 86_400_000 }] });
 * // per assignment: state.drop(p); for each changelog record of p: state.restore(p, key, value, counts);
 * // per batch: outputs + state.takeChanges() + offsets in one transaction
 */
export class ChangelogStateBackend implements StateBackend {
  readonly kind = 'changelog' as const;
  readonly #clock: Clock;
  readonly #states: ReadonlyMap<string, StateDescriptor>;
  readonly #defaultMaxEntries: number | undefined;
  readonly #partitions = new Map<number, MemoryStateBackend>();
  #changes: StateChange[] = [];
  /** Claims and accepted sequences per partition since the last take, as [key, value, key, value, ...]. */
  #appends = new Map<number, string[]>();

  constructor(options: ChangelogStateOptions) {
    this.#clock = options.clock;
    this.#states = new Map(options.states.map((s) => [s.name, s]));
    this.#defaultMaxEntries = options.defaultMaxEntries;
  }

  async open(): Promise<void> {}

  async claim(state: StateDescriptor, requests: readonly ClaimRequest[]): Promise<ClaimResult[]> {
    const results: ClaimResult[] = new Array(requests.length);
    const expiresAt = this.#clock.now() + state.ttlMs;
    for (const [partition, indexes] of byPartition(requests)) {
      const store = this.#store(partition);
      const answers = await store.claim(
        state,
        indexes.map((i) => requests[i]!),
      );
      for (let j = 0; j < indexes.length; j++) {
        const i = indexes[j]!;
        const answer = answers[j]!;
        results[i] = answer;
        if (answer.status === 'taken') continue;
        const { key, owner } = requests[i]!;
        this.#append(partition, `c${SEP}${state.name}${SEP}${key}`, `${owner}${SEP}${expiresAt}`);
      }
    }
    return results;
  }

  async advanceSequences(
    state: StateDescriptor,
    window: number,
    requests: readonly SequenceRequest[],
  ): Promise<SequenceResult[]> {
    const results: SequenceResult[] = new Array(requests.length);
    const expiresAt = this.#clock.now() + state.ttlMs;
    for (const [partition, indexes] of byPartition(requests)) {
      const store = this.#store(partition);
      const answers = await store.advanceSequences(
        state,
        window,
        indexes.map((i) => requests[i]!),
      );
      for (let j = 0; j < indexes.length; j++) {
        const i = indexes[j]!;
        const answer = answers[j]!;
        results[i] = answer;
        if (answer.status !== 'new') continue;
        const { stream, sequence, owner } = requests[i]!;
        this.#append(partition, `s${SEP}${state.name}${SEP}${stream}${SEP}${sequence}`, `${owner}${SEP}${expiresAt}`);
      }
    }
    return results;
  }

  async get(state: StateDescriptor, requests: readonly ValueRequest[]): Promise<(string | null)[]> {
    const results: (string | null)[] = new Array(requests.length);
    for (const [partition, indexes] of byPartition(requests)) {
      const answers = await this.#store(partition).get(
        state,
        indexes.map((i) => requests[i]!),
      );
      for (let j = 0; j < indexes.length; j++) results[indexes[j]!] = answers[j]!;
    }
    return results;
  }

  async put(state: StateDescriptor, writes: readonly ValueWrite[]): Promise<void> {
    const expiresAt = this.#clock.now() + state.ttlMs;
    for (const [partition, indexes] of byPartition(writes)) {
      const mine = indexes.map((i) => writes[i]!);
      await this.#store(partition).put(state, mine);
      for (const { key, value } of mine) {
        this.#changes.push({
          partition,
          key: `v${SEP}${state.name}${SEP}${key}`,
          value: value === null ? null : `${expiresAt}${SEP}${value}`,
        });
      }
    }
  }

  /** The changes made since the last call, in order: the caller writes them in the batch's transaction. */
  takeChanges(): StateChange[] {
    const changes = this.#changes;
    this.#changes = [];
    for (const [partition, flat] of this.#appends) {
      for (let from = 0, chunk = 0; from < flat.length; from += 2 * MAX_BATCH_ENTRIES, chunk++) {
        const entries = flat.slice(from, from + 2 * MAX_BATCH_ENTRIES);
        const first = ownerOf(entries[1]!);
        const last = ownerOf(entries[entries.length - 1]!);
        changes.push({ partition, key: `b${SEP}${first}${SEP}${last}${SEP}${chunk}`, value: JSON.stringify(entries) });
      }
    }
    this.#appends = new Map();
    return changes;
  }

  #append(partition: number, key: string, value: string): void {
    const flat = this.#appends.get(partition);
    if (flat) flat.push(key, value);
    else this.#appends.set(partition, [key, value]);
  }

  /** Forgets one partition's working copy (its partition was revoked, or is about to be restored). */
  drop(partition: number): void {
    void this.#partitions.get(partition)?.close();
    this.#partitions.delete(partition);
  }

  /** Forgets every partition's working copy and every change not yet taken (a restart from committed offsets). */
  dropAll(): void {
    for (const partition of [...this.#partitions.keys()]) this.drop(partition);
    this.#changes = [];
    this.#appends = new Map();
  }

  /** Applies one changelog record of `partition` to its working copy (a batch record: each of its entries). */
  restore(partition: number, key: string, value: string | null, counts: RestoreCounts): void {
    if (key[0] !== 'b' || key[1] !== SEP) {
      this.#restoreEntry(partition, key, value, counts);
      return;
    }
    const entries = value === null ? null : parseEntries(value);
    if (entries === null) {
      counts.skipped++;
      return;
    }
    for (let i = 0; i + 1 < entries.length; i += 2) this.#restoreEntry(partition, entries[i]!, entries[i + 1]!, counts);
  }

  #restoreEntry(partition: number, key: string, value: string | null, counts: RestoreCounts): void {
    const parsed = parseChange(key, value);
    const state = parsed ? this.#states.get(parsed.state) : undefined;
    const live =
      parsed !== null &&
      (parsed.kind === 'value' && parsed.value === null ? true : parsed.expiresAt > this.#clock.now());
    if (!parsed || !state || !live) {
      counts.skipped++;
      return;
    }
    const store = this.#store(partition);
    if (parsed.kind === 'claim') store.restoreClaim(state, parsed.key, parsed.owner, parsed.expiresAt);
    else if (parsed.kind === 'sequence')
      store.restoreSequence(state, parsed.stream, parsed.sequence, parsed.owner, parsed.expiresAt);
    else store.restoreValue(state, parsed.key, parsed.value, parsed.expiresAt);
    counts.applied++;
  }

  /** Partitions with a working copy. */
  get partitions(): readonly number[] {
    return [...this.#partitions.keys()];
  }

  /** Entries held and capacity evictions per state name, over the partitions held now (metrics). */
  stats(): Map<string, { entries: number; evictions: number }> {
    const out = new Map<string, { entries: number; evictions: number }>();
    for (const store of this.#partitions.values()) {
      for (const [name, stats] of store.stats()) {
        const sum = out.get(name) ?? { entries: 0, evictions: 0 };
        sum.entries += stats.entries;
        sum.evictions += stats.evictions;
        out.set(name, sum);
      }
    }
    return out;
  }

  async close(): Promise<void> {
    this.dropAll();
  }

  #store(partition: number): MemoryStateBackend {
    let store = this.#partitions.get(partition);
    if (store === undefined) {
      store = this.#newStore();
      void store.open();
      this.#partitions.set(partition, store);
    }
    return store;
  }

  #newStore(): MemoryStateBackend {
    return new MemoryStateBackend({
      clock: this.#clock,
      ...(this.#defaultMaxEntries !== undefined ? { defaultMaxEntries: this.#defaultMaxEntries } : {}),
    });
  }
}

/** The owner token in a claim or sequence entry's value (`<owner>\0<expiresAt>`). */
function ownerOf(value: string): string {
  return value.slice(0, value.lastIndexOf(SEP));
}

/** A batch record's entries, or null when its value is not what this version writes. */
function parseEntries(value: string): string[] | null {
  try {
    const entries: unknown = JSON.parse(value);
    return Array.isArray(entries) && entries.every((e) => typeof e === 'string') ? (entries as string[]) : null;
  } catch {
    return null;
  }
}

/** Request indexes per input partition, in request order (a batch is one partition; embedded sources may mix). */
function byPartition(requests: readonly { readonly partition?: number }[]): Map<number, number[]> {
  const out = new Map<number, number[]>();
  for (let i = 0; i < requests.length; i++) {
    const partition = requests[i]!.partition;
    if (partition === undefined) {
      throw new VigilError('INTERNAL', 'changelog state: a request without its input partition');
    }
    const indexes = out.get(partition);
    if (indexes) indexes.push(i);
    else out.set(partition, [i]);
  }
  return out;
}

type ParsedChange =
  | { kind: 'claim'; state: string; key: string; owner: string; expiresAt: number }
  | { kind: 'sequence'; state: string; stream: string; sequence: number; owner: string; expiresAt: number }
  | { kind: 'value'; state: string; key: string; value: string | null; expiresAt: number };

/** Reads a changelog record back (value null: a tombstone); null when it is not one this version writes. */
export function parseChange(key: string, value: string | null): ParsedChange | null {
  const stateEnd = key.indexOf(SEP, 2);
  if (key[1] !== SEP || stateEnd < 0) return null;
  const state = key.slice(2, stateEnd);
  const rest = key.slice(stateEnd + 1);
  if (key[0] === 'v') {
    if (value === null) return { kind: 'value', state, key: rest, value: null, expiresAt: 0 };
    const cut = value.indexOf(SEP);
    const expiresAt = Number(value.slice(0, cut));
    if (cut <= 0 || !Number.isFinite(expiresAt)) return null;
    return { kind: 'value', state, key: rest, value: value.slice(cut + 1), expiresAt };
  }
  if (value === null) return null;
  const cut = value.lastIndexOf(SEP);
  if (cut <= 0) return null;
  const owner = value.slice(0, cut);
  const expiresAt = Number(value.slice(cut + 1));
  if (!Number.isFinite(expiresAt)) return null;
  if (key[0] === 'c') return { kind: 'claim', state, key: rest, owner, expiresAt };
  if (key[0] !== 's') return null;
  const seqAt = rest.lastIndexOf(SEP);
  if (seqAt < 0) return null;
  const sequence = Number(rest.slice(seqAt + 1));
  if (!Number.isSafeInteger(sequence)) return null;
  return { kind: 'sequence', state, stream: rest.slice(0, seqAt), sequence, owner, expiresAt };
}
