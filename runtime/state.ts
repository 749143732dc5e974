/**
 * Keyed state, behind one interface: in-memory with TTL (embedded mode), the same in-memory store per input partition
 * with every change logged to a Kafka changelog inside the worker's transaction (distributed mode, ./state/changelog.ts),
 * and Redis (kept for services that share state across processes outside a transaction).
 *
 * State is declared (a `StateDescriptor`: stable name, TTL, and for the in-memory backend a capacity), and every
 * mutation carries an *owner token*: the `partition:offset` of the record that made it. The changelog in the worker's
 * transaction keeps state and outputs in step across crashes; owner tokens make a batch that is read again (dropped at
 * a rebalance, with its working state kept) classify exactly as the first time. Classification is a pure function of
 * the log, so reruns, restarts and embedded runs agree.
 *
 * Keys are confined to one partition's records (the source is keyed by device), so only one worker touches a key at a
 * time. Because state is kept per input partition, an event id is recognised as a duplicate within its device's
 * partition: a copy of an event always comes from the same device, hence the same partition.
 */

export interface StateDescriptor {
  /** Stable, dotted name: the changelog key prefix and the metrics label. e.g. `dedupe.event_id`. */
  readonly name: string;
  /** How long an entry lives after it was written. */
  readonly ttlMs: number;
  /** In-memory backend only: the most entries kept; the oldest are evicted first (and counted) beyond it. */
  readonly maxEntries?: number;
}

export interface ClaimRequest {
  readonly key: string;
  /** The owner token of the record making the claim. */
  readonly owner: string;
  /**
   * The input partition of the record (its origin's): state is kept per input partition, like a Kafka Streams task's
   * store, so the partitioned backend needs it; the others ignore it.
   */
  readonly partition?: number;
}

/**
 * - `claimed`: nobody held the key; it is now held by this owner.
 * - `own`: this very owner already held it (a replay after a crash): treat as `claimed`.
 * - `taken`: another owner holds it; `heldBy` names it.
 */
export type ClaimResult =
  | { readonly status: 'claimed' | 'own' }
  | { readonly status: 'taken'; readonly heldBy: string };

export interface SequenceRequest {
  /** The stream the sequence numbers belong to (a device). */
  readonly stream: string;
  readonly sequence: number;
  readonly owner: string;
  /** The input partition of the record (see `ClaimRequest.partition`). */
  readonly partition?: number;
}

/**
 * Sliding replay window per stream (IPsec-style):
 * - `new`: first time this sequence is seen (or a replay of the same owner after a crash);
 * - `duplicate`: the sequence was already accepted from another owner; `heldBy` names it;
 * - `too_old`: left of the window (more than `window` below the highest accepted sequence) and not seen before.
 */
export type SequenceResult =
  | { readonly status: 'new' }
  | { readonly status: 'duplicate'; readonly heldBy: string }
  | { readonly status: 'too_old'; readonly highest: number };

/** A keyed value to read (operator state such as an alert's state machine). */
export interface ValueRequest {
  readonly key: string;
  /** The input partition of the record (see `ClaimRequest.partition`). */
  readonly partition?: number;
}

/** A keyed value to write: `null` deletes it. */
export interface ValueWrite {
  readonly key: string;
  readonly value: string | null;
  readonly partition?: number;
}

export interface StateBackend {
  /** Backend name for logs and metrics. */
  readonly kind: 'memory' | 'redis' | 'changelog';
  /** Fails with a message that says what to fix when the backend cannot be used (e.g. Redis unreachable). */
  open(): Promise<void>;
  /** Claims keys in order (a later request in the same call sees an earlier one's claim). */
  claim(state: StateDescriptor, requests: readonly ClaimRequest[]): Promise<ClaimResult[]>;
  /** Checks and advances per-stream replay windows in order. */
  advanceSequences(
    state: StateDescriptor,
    window: number,
    requests: readonly SequenceRequest[],
  ): Promise<SequenceResult[]>;
  /** Reads keyed values, one per request in order: null when absent or expired. */
  get(state: StateDescriptor, requests: readonly ValueRequest[]): Promise<(string | null)[]>;
  /** Writes keyed values in order (null deletes); each lives the state's TTL from its write. */
  put(state: StateDescriptor, writes: readonly ValueWrite[]): Promise<void>;
  close(): Promise<void>;
}
