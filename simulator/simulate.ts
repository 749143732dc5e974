/**
 * `simulateFleet(options)`: a deterministic, pure generator of what a hospital-at-home gateway would put on the raw
 * topic, in received_at order, with every injected fault labelled with the truth the pipeline must reach.
 *
 * @example
 * const tally = new TruthTally();
 * for (const record of simulateFleet({ devices: 1000, events: 100_000, seed: 7, duplicateRate: 0.05 })) {
 *   tally.add(record);
 *   const bytes = recordBytes(record, schemaId); // Confluent frame (or the broken bytes of a raw-byte fault)
 * }
 * tally.summary(); // { valid, duplicates, replays, deadLetters: { BAD_MAGIC_BYTE: n, ... }, ... }
 *
 * Memory stays flat however long the run: per-device state, a bounded ring of recent envelopes to re-send as
 * duplicates and a bounded pool of older ones to replay.
 */
import type avro from 'avsc';
import { type ReasonCode, VigilError } from '../runtime/errors.ts';
import type { Envelope } from '../schemas/types.ts';
import { DeviceSim } from './device.ts';
import {
  applySemanticFault,
  pickSemanticFault,
  RAW_FAULTS,
  type RawFault,
  rawFaultBytes,
  SEMANTIC_FAULTS,
  type SemanticFault,
} from './faults.ts';
import { buildFleet, DEFAULT_BIASED_FIRMWARE, type Fleet, fleetEventRate } from './fleet.ts';
import { frameEnvelope } from './framing.ts';
import { Prng } from './prng.ts';

export interface SimulateOptions {
  /** Devices in the fleet (default 1000). */
  readonly devices?: number;
  /** Records to emit in total, faults included (default 100,000). */
  readonly events?: number;
  /** Same seed, same records, byte for byte (default 1). */
  readonly seed?: number | string;
  /** True time the run starts at, epoch ms (default 2026-01-05T06:00:00Z). */
  readonly startTime?: number;
  /** Sites the fleet is spread over (default 20). */
  readonly sites?: number;
  /** Share of records that re-send a recent envelope, same bytes (default 0.03). */
  readonly duplicateRate?: number;
  /** Share of records that re-send an envelope 5-60 min old with a new received_at (default 0.005). */
  readonly replayRate?: number;
  /** Share of records that are malformed, raw-byte and semantic faults together (default 0.01). */
  readonly malformedRate?: number;
  /** Share of malformed records that are raw-byte faults (default 0.4). */
  readonly rawFaultShare?: number;
  /** The firmware version whose SpO2 sensor reads low, or null for no bias (default '5.13.0-rc2'). */
  readonly biasedFirmware?: string | null;
  /** Share of devices on that firmware (rolled out at pilot sites), biased or not (default 0.12). */
  readonly biasFraction?: number;
  /** Registry id raw-byte faults are framed with (the id good envelopes will be framed with; default 1). */
  readonly schemaId?: number;
  /** An id the registry does not have, for `unknown_schema_id` faults (default 2147483000). */
  readonly unknownSchemaId?: number;
  /** How many recent valid envelopes duplicates are drawn from (default 2048). */
  readonly duplicateWindow?: number;
}

export const SIMULATION_DEFAULTS = {
  devices: 1000,
  events: 100_000,
  seed: 1 as number | string,
  startTime: Date.UTC(2026, 0, 5, 6, 0, 0),
  sites: 20,
  duplicateRate: 0.03,
  replayRate: 0.005,
  malformedRate: 0.01,
  rawFaultShare: 0.4,
  biasedFirmware: DEFAULT_BIASED_FIRMWARE as string | null,
  biasFraction: 0.12,
  schemaId: 1,
  unknownSchemaId: 2_147_483_000,
  duplicateWindow: 2048,
};

export type ResolvedSimulateOptions = typeof SIMULATION_DEFAULTS;

/** Replays re-send envelopes received between these ages ago. */
export const REPLAY_MIN_AGE_MS = 5 * 60_000;
export const REPLAY_MAX_AGE_MS = 60 * 60_000;
/** The per-device replay window size the pipeline is expected to keep (IPsec's 64). */
export const REPLAY_WINDOW = 64;

/** What the pipeline must make of a record. */
export type Truth = 'valid' | 'duplicate' | 'replay' | `malformed:${ReasonCode}`;

interface RecordBase {
  /** Position in the stream, from 0. */
  readonly index: number;
  /** Kafka key: the device id. */
  readonly key: string;
  readonly truth: Truth;
}

export interface EnvelopeRecord extends RecordBase {
  readonly kind: 'envelope';
  /** Shared with the original for duplicates: treat as read-only. */
  readonly envelope: Envelope;
  readonly fault: SemanticFault | null;
  /** For replays: how many sequence numbers the device has moved on since the replayed event. */
  readonly replayLag: number | null;
}

export interface RawRecord extends RecordBase {
  readonly kind: 'raw';
  readonly bytes: Buffer;
  readonly fault: RawFault;
  /** The envelope the broken bytes were made from (NDJSON output writes it as a broken JSON line). */
  readonly source: Envelope;
  /** Where, as a fraction of its length, the NDJSON writer cuts the line (always leaves invalid JSON). */
  readonly jsonCut: number;
}

export type SimulatedRecord = EnvelopeRecord | RawRecord;

/**
 * Where records end up, which changes what some faults become: NDJSON cannot carry raw bytes (they are written as
 * broken JSON lines: JSON_PARSE_FAILED) and has no union wrapping (a payload that does not fit its event_type is
 * ENVELOPE_INVALID); an Avro container file cannot hold raw bytes at all (they are left out).
 */
export type OutputFormat = 'kafka' | 'ndjson' | 'avro';

/** The truth of a record as written in `format`; null when the format cannot hold it. */
export function truthIn(record: SimulatedRecord, format: OutputFormat): Truth | null {
  if (format === 'kafka') return record.truth;
  if (record.kind === 'raw') return format === 'ndjson' ? 'malformed:JSON_PARSE_FAILED' : null;
  if (format === 'ndjson' && record.fault === 'payload_type_mismatch') return 'malformed:ENVELOPE_INVALID';
  return record.truth;
}

export interface TruthSummary {
  readonly format: OutputFormat;
  /** Records in the output: what the pipeline must count as consumed. */
  readonly records: number;
  /** Generated records the format could not hold (raw-byte faults in an Avro file). */
  readonly omitted: number;
  /** Unique valid events: what the pipeline must emit. */
  readonly valid: number;
  /** Exact re-sends: the pipeline counts each as a duplicate. */
  readonly duplicates: number;
  /** Replays: never a new event; a duplicate while the pipeline remembers the event id or sequence. */
  readonly replays: number;
  /** Replays whose sequence lies left of a 64-wide replay window when they arrive. */
  readonly replaysBeyondWindow: number;
  readonly malformed: number;
  /** Expected dead letters by reason code. */
  readonly deadLetters: Readonly<Record<string, number>>;
  /** Injected faults by kind (as generated, before any format mapping). */
  readonly faults: Readonly<Record<string, number>>;
}

/** Counts truth labels as records go by. */
export class TruthTally {
  readonly format: OutputFormat;
  #records = 0;
  #omitted = 0;
  #valid = 0;
  #duplicates = 0;
  #replays = 0;
  #beyond = 0;
  #malformed = 0;
  readonly #deadLetters = new Map<string, number>();
  readonly #faults = new Map<string, number>();

  constructor(format: OutputFormat = 'kafka') {
    this.format = format;
  }

  /** Counts a record; returns its truth in this tally's format (null when left out). */
  add(record: SimulatedRecord): Truth | null {
    if (record.fault) this.#faults.set(record.fault, (this.#faults.get(record.fault) ?? 0) + 1);
    const truth = truthIn(record, this.format);
    if (truth === null) {
      this.#omitted++;
      return null;
    }
    this.#records++;
    if (truth === 'valid') this.#valid++;
    else if (truth === 'duplicate') this.#duplicates++;
    else if (truth === 'replay') {
      this.#replays++;
      if (record.kind === 'envelope' && (record.replayLag ?? 0) >= REPLAY_WINDOW) this.#beyond++;
    } else {
      this.#malformed++;
      const code = truth.slice('malformed:'.length);
      this.#deadLetters.set(code, (this.#deadLetters.get(code) ?? 0) + 1);
    }
    return truth;
  }

  summary(): TruthSummary {
    const sorted = (m: Map<string, number>) => Object.fromEntries([...m].sort(([a], [b]) => (a < b ? -1 : 1)));
    return {
      format: this.format,
      records: this.#records,
      omitted: this.#omitted,
      valid: this.#valid,
      duplicates: this.#duplicates,
      replays: this.#replays,
      replaysBeyondWindow: this.#beyond,
      malformed: this.#malformed,
      deadLetters: sorted(this.#deadLetters),
      faults: sorted(this.#faults),
    };
  }
}

/** The bytes a producer sends for a record: its Confluent frame, or the broken bytes of a raw-byte fault. */
export function recordBytes(record: SimulatedRecord, schemaId: number, type?: avro.Type): Buffer {
  return record.kind === 'raw' ? record.bytes : frameEnvelope(record.envelope, schemaId, type);
}

export function resolveSimulateOptions(options: SimulateOptions = {}): ResolvedSimulateOptions {
  const o: ResolvedSimulateOptions = { ...SIMULATION_DEFAULTS };
  for (const [key, value] of Object.entries(options)) {
    if (!(key in SIMULATION_DEFAULTS)) throw new VigilError('CONFIG_INVALID', `simulator: unknown option "${key}"`);
    if (value !== undefined) (o as Record<string, unknown>)[key] = value;
  }
  const integer = (name: keyof ResolvedSimulateOptions, lo: number, hi: number) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isInteger(v) || v < lo || v > hi) {
      throw new VigilError('CONFIG_INVALID', `simulator: ${name} must be an integer in ${lo}..${hi}`);
    }
  };
  const rate = (name: keyof ResolvedSimulateOptions) => {
    const v = o[name];
    if (typeof v !== 'number' || !Number.isFinite(v) || v < 0 || v > 1) {
      throw new VigilError('CONFIG_INVALID', `simulator: ${name} must be a number in 0..1`);
    }
  };
  integer('devices', 1, 10_000_000);
  integer('events', 0, Number.MAX_SAFE_INTEGER);
  integer('sites', 1, 10_000);
  integer('startTime', 0, 2 ** 47);
  integer('schemaId', 0, 0x7fffffff);
  integer('unknownSchemaId', 0, 0x7fffffff);
  integer('duplicateWindow', 1, 1_000_000);
  for (const name of ['duplicateRate', 'replayRate', 'malformedRate', 'rawFaultShare', 'biasFraction'] as const)
    rate(name);
  if (o.duplicateRate + o.replayRate + o.malformedRate > 0.9) {
    throw new VigilError('CONFIG_INVALID', 'simulator: duplicateRate + replayRate + malformedRate must be at most 0.9');
  }
  if (o.unknownSchemaId === o.schemaId) {
    throw new VigilError('CONFIG_INVALID', 'simulator: unknownSchemaId must differ from schemaId');
  }
  if (typeof o.seed !== 'number' && typeof o.seed !== 'string') {
    throw new VigilError('CONFIG_INVALID', 'simulator: seed must be a number or a string');
  }
  if (o.biasedFirmware !== null && (typeof o.biasedFirmware !== 'string' || o.biasedFirmware.trim() === '')) {
    throw new VigilError('CONFIG_INVALID', 'simulator: biasedFirmware must be a version string or null');
  }
  return o;
}

/** Expected run length in ms for these options (episode timing scales with it). */
export function horizonMs(o: Pick<ResolvedSimulateOptions, 'events' | 'devices'>): number {
  return Math.max(3_600_000, Math.ceil((o.events / fleetEventRate(o.devices)) * 1000));
}

/** The fleet a run with these options simulates (which device is where, on what firmware, biased or not). */
export function fleetFor(options: SimulateOptions = {}): Fleet {
  const o = resolveSimulateOptions(options);
  return buildFleet({
    devices: o.devices,
    sites: o.sites,
    seed: o.seed,
    startTime: o.startTime,
    horizonMs: horizonMs(o),
    candidateFirmware: o.biasedFirmware ?? DEFAULT_BIASED_FIRMWARE,
    biasOn: o.biasedFirmware !== null,
    candidateFraction: o.biasFraction,
  });
}

/** The simulated gateway output. Returns (as the generator's return value) the truth summary of what it yielded. */
export function* simulateFleet(options: SimulateOptions = {}): Generator<SimulatedRecord, TruthSummary, undefined> {
  const o = resolveSimulateOptions(options);
  const fleet = fleetFor(o);
  const sims = fleet.devices.map((d) => new DeviceSim(d, o.seed, o.startTime));
  const pending: Envelope[] = sims.map((s) => s.next());
  const heap = new IndexHeap(sims.length);
  for (let i = 0; i < sims.length; i++) heap.push(i, (pending[i] as Envelope).received_at);
  const emittedSeq = new Float64Array(sims.length);
  const faults = Prng.derive(o.seed, 'faults');
  const recent = new Ring<Envelope>(o.duplicateWindow);
  const pool = new ReplayPool(4096);
  const tally = new TruthTally('kafka');
  const dupEnd = o.duplicateRate;
  const replayEnd = dupEnd + o.replayRate;
  const malformedEnd = replayEnd + o.malformedRate;
  let streamTime = o.startTime;
  let validCount = 0;

  for (let index = 0; index < o.events; index++) {
    const u = faults.float();
    let record: SimulatedRecord | null = null;
    if (u < dupEnd) {
      const envelope = recent.pick(faults);
      if (envelope) {
        record = {
          kind: 'envelope',
          index,
          key: envelope.device_id,
          truth: 'duplicate',
          envelope,
          fault: null,
          replayLag: null,
        };
      }
    } else if (u < replayEnd) {
      const entry = pool.pick(streamTime, faults);
      if (entry) {
        const envelope: Envelope = { ...entry.envelope, received_at: streamTime };
        const replayLag = (emittedSeq[entry.device] as number) - (entry.envelope.sequence as number);
        record = {
          kind: 'envelope',
          index,
          key: envelope.device_id,
          truth: 'replay',
          envelope,
          fault: null,
          replayLag,
        };
      }
    }
    if (record === null) {
      const device = heap.pop();
      const envelope = pending[device] as Envelope;
      const next = (sims[device] as DeviceSim).next();
      pending[device] = next;
      heap.push(device, next.received_at);
      streamTime = envelope.received_at;
      emittedSeq[device] = envelope.sequence as number;
      if (u >= replayEnd && u < malformedEnd) {
        if (faults.chance(o.rawFaultShare)) {
          const fault = faults.pick(RAW_FAULT_KINDS);
          const bytes = rawFaultBytes(envelope, fault, faults, o.schemaId, o.unknownSchemaId);
          const truth: Truth = `malformed:${RAW_FAULTS[fault]}`;
          record = {
            kind: 'raw',
            index,
            key: envelope.device_id,
            truth,
            bytes,
            fault,
            source: envelope,
            jsonCut: faults.float(),
          };
        } else {
          const fault = pickSemanticFault(envelope, faults);
          const broken = applySemanticFault(envelope, fault, faults);
          const truth: Truth = `malformed:${SEMANTIC_FAULTS[fault]}`;
          record = {
            kind: 'envelope',
            index,
            key: envelope.device_id,
            truth,
            envelope: broken,
            fault,
            replayLag: null,
          };
        }
      } else {
        recent.push(envelope);
        if (++validCount % 16 === 0) pool.push({ envelope, device, receivedAt: envelope.received_at });
        record = {
          kind: 'envelope',
          index,
          key: envelope.device_id,
          truth: 'valid',
          envelope,
          fault: null,
          replayLag: null,
        };
      }
    }
    tally.add(record);
    yield record;
  }
  return tally.summary();
}

const RAW_FAULT_KINDS = Object.keys(RAW_FAULTS) as RawFault[];

/** A fixed-capacity ring that overwrites its oldest entry. */
class Ring<T> {
  readonly #items: (T | undefined)[];
  #next = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#items = new Array(capacity);
  }

  push(item: T): void {
    this.#items[this.#next] = item;
    this.#next = (this.#next + 1) % this.#items.length;
    if (this.#size < this.#items.length) this.#size++;
  }

  pick(prng: Prng): T | undefined {
    if (this.#size === 0) return undefined;
    return this.#items[Math.floor(prng.float() * this.#size)];
  }
}

interface PoolEntry {
  readonly envelope: Envelope;
  readonly device: number;
  readonly receivedAt: number;
}

/** Envelopes kept for replay, in receipt order; those older than the maximum replay age fall out. */
class ReplayPool {
  readonly #items: (PoolEntry | undefined)[];
  #head = 0;
  #size = 0;

  constructor(capacity: number) {
    this.#items = new Array(capacity);
  }

  #at(i: number): PoolEntry {
    return this.#items[(this.#head + i) % this.#items.length] as PoolEntry;
  }

  push(entry: PoolEntry): void {
    if (this.#size === this.#items.length) this.#drop();
    this.#items[(this.#head + this.#size) % this.#items.length] = entry;
    this.#size++;
  }

  #drop(): void {
    this.#items[this.#head] = undefined;
    this.#head = (this.#head + 1) % this.#items.length;
    this.#size--;
  }

  /** A random entry received between REPLAY_MIN_AGE_MS and REPLAY_MAX_AGE_MS before `now`, if any. */
  pick(now: number, prng: Prng): PoolEntry | undefined {
    while (this.#size > 0 && now - this.#at(0).receivedAt > REPLAY_MAX_AGE_MS) this.#drop();
    // Entries are in receipt order: the old-enough ones are a prefix.
    let lo = 0;
    let hi = this.#size;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (now - this.#at(mid).receivedAt >= REPLAY_MIN_AGE_MS) lo = mid + 1;
      else hi = mid;
    }
    if (lo === 0) return undefined;
    return this.#at(Math.floor(prng.float() * lo));
  }
}

/** A binary min-heap of device indices keyed by their next receipt time (ties: lower index first). */
class IndexHeap {
  readonly #heap: Int32Array;
  readonly #keys: Float64Array;
  #size = 0;

  constructor(capacity: number) {
    this.#heap = new Int32Array(capacity);
    this.#keys = new Float64Array(capacity);
  }

  #less(a: number, b: number): boolean {
    const ka = this.#keys[a] as number;
    const kb = this.#keys[b] as number;
    return ka < kb || (ka === kb && a < b);
  }

  push(item: number, key: number): void {
    this.#keys[item] = key;
    const h = this.#heap;
    let i = this.#size++;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      const p = h[parent] as number;
      if (!this.#less(item, p)) break;
      h[i] = p;
      i = parent;
    }
    h[i] = item;
  }

  pop(): number {
    const h = this.#heap;
    const top = h[0] as number;
    const last = h[--this.#size] as number;
    let i = 0;
    const n = this.#size;
    while (true) {
      let child = 2 * i + 1;
      if (child >= n) break;
      const right = child + 1;
      if (right < n && this.#less(h[right] as number, h[child] as number)) child = right;
      if (!this.#less(h[child] as number, last)) break;
      h[i] = h[child] as number;
      i = child;
    }
    h[i] = last;
    return top;
  }
}
