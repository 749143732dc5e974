/**
 * The `dedupe` logic: two checks through the state backend, one call each per batch, in batch order.
 *
 * 1. by event_id: `claim(dedupe.event_id)` with the record's owner token (`partition:offset` of its origin, plus
 *    `/<lane>` for a source other than the pipeline's first: two lanes hold the same positions);
 *    `taken` -> duplicate (kind `event_id`, firstSeen = the owner that holds it).
 * 2. by (device_id, sequence), for the records that survived 1 and carry a sequence — one window per device and source
 *    lane: a pipeline reading raw and the alarm lane sees each lane in its own order (alarms overtake a vitals
 *    backlog by design), so one shared window would call the slower lane's sequences too old. A sequence replayed
 *    across lanes under another event id is the gateway's to refuse (SEQUENCE_REPLAYED, device-wide, at ingestion):
 *    `advanceSequences(dedupe.sequence, window)`; `duplicate` -> duplicate (kind `sequence`), `too_old` -> rejected
 *    SEQUENCE_TOO_OLD. This is the per-device monotonic-sequence rule (`validate` cannot hold keyed state): out-of-order
 *    arrival inside the window is accepted, anything left of it that was never seen is refused.
 *
 * Replay: state remembers which record wrote it, so when a worker re-reads a batch after a crash (state written,
 * offsets not committed), each record finds its own token (`own` / `new`) and is classified exactly as the first time.
 */
import { VigilError } from '../../runtime/errors.ts';
import { type Operator, type OperatorContext, ResultsBuilder } from '../../runtime/operator.ts';
import { type InFlight, originToken } from '../../runtime/record.ts';
import type { ClaimRequest, SequenceRequest, StateBackend, StateDescriptor } from '../../runtime/state.ts';
import type { CheckedEvent } from '../types.ts';
import type { DedupeConfig } from './config.ts';

/** Stable state names: changelog key prefixes, metric labels, memory-backend counters. */
export const EVENT_ID_STATE = 'dedupe.event_id';
export const SEQUENCE_STATE = 'dedupe.sequence';

export class DedupeOperator implements Operator<CheckedEvent, CheckedEvent> {
  readonly name = 'dedupe';
  readonly stage = 'dedupe' as const;
  readonly config: DedupeConfig;
  readonly eventIds: StateDescriptor;
  readonly sequences: StateDescriptor;
  readonly states: readonly StateDescriptor[];
  readonly #tooOld: string;
  #state: StateBackend | undefined;
  /** Source topic -> its position in the definition (the owner token's lane); the first source is lane 0. */
  #lanes: ReadonlyMap<string, number> = new Map();

  constructor(config: DedupeConfig) {
    this.config = config;
    this.eventIds = Object.freeze({ name: EVENT_ID_STATE, ttlMs: config.ttlMs, maxEntries: config.maxEntries });
    this.sequences = Object.freeze({ name: SEQUENCE_STATE, ttlMs: config.ttlMs, maxEntries: config.maxEntries });
    this.states = [this.eventIds, this.sequences];
    this.#tooOld = `sequence is left of the device's ${config.window}-sequence replay window and was never accepted`;
  }

  /** Opens the state backend (idempotent), so a backend that cannot be used fails here, before the first record. */
  async open(context: OperatorContext): Promise<void> {
    await context.state.open();
    this.#state = context.state;
    this.#lanes = new Map((context.sources ?? []).map((topic, lane) => [topic, lane]));
  }

  async process(batch: readonly InFlight<CheckedEvent>[]): Promise<ResultsBuilder<CheckedEvent>> {
    const state = this.#state;
    if (state === undefined) throw new VigilError('INTERNAL', 'dedupe: process() called before open()');
    const results = new ResultsBuilder<CheckedEvent>();
    const n = batch.length;
    if (n === 0) return results;

    const owners: string[] = new Array(n);
    const claims: ClaimRequest[] = new Array(n);
    for (let i = 0; i < n; i++) {
      const record = batch[i]!;
      const owner = originToken(record.origin, this.#lanes.get(record.origin.topic) ?? 0);
      owners[i] = owner;
      claims[i] = { key: record.value.envelope.event_id, owner, partition: record.origin.partition };
    }
    const claimed = await state.claim(this.eventIds, claims);
    expectLength(claimed.length, n, 'claim');

    // Survivors of the event-id check that carry a sequence, in batch order.
    const sequenced: number[] = [];
    const requests: SequenceRequest[] = [];
    for (let i = 0; i < n; i++) {
      if (claimed[i]!.status === 'taken') continue;
      const { envelope } = batch[i]!.value;
      if (envelope.sequence == null) continue;
      sequenced.push(i);
      const lane = this.#lanes.get(batch[i]!.origin.topic) ?? 0;
      requests.push({
        // The first lane keeps the device id as its stream (existing changelogs restore as before).
        stream: lane === 0 ? envelope.device_id : `${envelope.device_id}\u001f${lane}`,
        sequence: envelope.sequence,
        owner: owners[i]!,
        partition: batch[i]!.origin.partition,
      });
    }
    const windows =
      requests.length === 0 ? [] : await state.advanceSequences(this.sequences, this.config.window, requests);
    expectLength(windows.length, requests.length, 'advanceSequences');

    let next = 0;
    for (let i = 0; i < n; i++) {
      const record = batch[i]!;
      const claim = claimed[i]!;
      if (claim.status === 'taken') {
        results.duplicate(record, 'event_id', claim.heldBy);
        continue;
      }
      if (sequenced[next] !== i) {
        results.pass(record.origin, record.value);
        continue;
      }
      const verdict = windows[next++]!;
      if (verdict.status === 'new') results.pass(record.origin, record.value);
      else if (verdict.status === 'duplicate') results.duplicate(record, 'sequence', verdict.heldBy);
      else results.reject(record, 'SEQUENCE_TOO_OLD', this.#tooOld);
    }
    return results;
  }
}

function expectLength(actual: number, expected: number, call: string): void {
  if (actual !== expected) {
    throw new VigilError('INTERNAL', `dedupe: state ${call} answered ${actual} verdicts for ${expected} requests`);
  }
}
