/**
 * The one operator signature: a batch in, batches out.
 *
 * A bad record never fails its batch. It leaves on a typed side output:
 * - `rejected`: ends in the dead-letter topic/table with a reason code from runtime/errors.ts;
 * - `duplicates`: an intentional drop, counted and recorded apart from failures;
 * - `side`: named non-record outputs (e.g. drift histograms) that the pipeline routes to sinks.
 * Every input record must end in exactly one of `out`, `rejected` or `duplicates`; the engine checks this after
 * every operator (the accounting identity consumed = emitted + dead-lettered + duplicates rests on it).
 */
import type { Clock } from './clock.ts';
import type { ReasonCode } from './errors.ts';
import type { Logger } from './log.ts';
import type { ModelRollouts, ModelStore } from './models.ts';
import type { InFlight, Origin } from './record.ts';
import type { StateBackend, StateDescriptor } from './state.ts';

export type DuplicateKind = 'event_id' | 'sequence';

export interface Rejection {
  readonly record: InFlight<unknown>;
  readonly code: ReasonCode;
  /** Why, in words safe for an operational log: field names and bounds, never a record's values. */
  readonly detail: string;
}

export interface DuplicateNotice {
  readonly record: InFlight<unknown>;
  readonly kind: DuplicateKind;
  /** Where the first copy was seen (`partition:offset`), when the state knows it. */
  readonly firstSeen: string | null;
}

/** Named side outputs an operator may add, as a map from output name to row type. */
export type SideOutputs = Record<string, unknown>;
export type NoSideOutputs = Record<never, never>;

export interface Results<O, S extends SideOutputs = NoSideOutputs> {
  readonly out: InFlight<O>[];
  readonly rejected: Rejection[];
  readonly duplicates: DuplicateNotice[];
  readonly side: { [K in keyof S]?: S[K][] };
}

/** What the runtime lends an operator when it opens. Operators reach external systems only through these. */
export interface OperatorContext {
  readonly pipeline: string;
  readonly clock: Clock;
  readonly state: StateBackend;
  readonly log: Logger;
  /** The local model store (models/<name>/<version>/), verified against manifests. */
  readonly models: ModelStore;
  /**
   * The model rollouts in force, applied live from the model-rollouts control log (absent: no registry, every scoring
   * operator runs its pipeline's default versions as live).
   */
  readonly rollouts?: ModelRollouts;
  /**
   * The pipeline's source topics, in definition order (the engine sets them from its definition; absent when an
   * operator is opened on its own: one source). Keyed state owner tokens name the source by its position here
   * (runtime/record.ts originToken).
   */
  readonly sources?: readonly string[];
}

export interface Operator<I, O, S extends SideOutputs = NoSideOutputs> {
  /** Stable name: metrics, lineage, dead letters and checkpoints use it. */
  readonly name: string;
  /** The stage this operator's dead letters are filed under. */
  readonly stage: 'validate' | 'dedupe' | 'score' | 'detect_drift' | 'raise_alerts';
  /**
   * The keyed state this operator keeps, declared up front (Flink's state descriptors): the distributed runner sizes
   * and retains the state changelog by these, and restores each input partition's entries before its first record.
   */
  readonly states?: readonly StateDescriptor[];
  /** Validates everything the operator needs (a model, the state backend) before the first record. */
  open?(context: OperatorContext): Promise<void>;
  /**
   * This operator for a run that accepts records which did not come through a gateway (`vigil run --accept-ungated`,
   * runtime/runners/ungated.ts): a copy that does not require gateway provenance. Absent: the operator requires none.
   */
  acceptingUngated?(): Operator<I, O, S>;
  /**
   * A property, not a method, on purpose: parameters of function-typed properties are checked strictly, so
   * `PipelineBuilder.pipe` rejects an operator whose input type does not match what the chain produces.
   */
  readonly process: (batch: readonly InFlight<I>[]) => Promise<Results<O, S>> | Results<O, S>;
  /** Called when the source is exhausted (embedded runs) so windowed operators can emit what they hold. */
  finish?(): Promise<Partial<Results<O, S>>> | Partial<Results<O, S>>;
  close?(): Promise<void>;
  /**
   * Reference data the operator measures against, for the sinks to land once before the first batch (e.g. drift
   * reference bins, so SQL reports can compare against the same baseline). Reads only through `context.models`.
   */
  referenceTables?(context: OperatorContext): Promise<readonly ReferenceTable[]>;
  /** Phantom member so a chain's side outputs are inferred; never set. */
  readonly __side?: S;
}

export interface ReferenceTable {
  readonly table: string;
  readonly rows: readonly Record<string, unknown>[];
}

/** A small builder so operators read as decisions, not array bookkeeping. */
export class ResultsBuilder<O, S extends SideOutputs = NoSideOutputs> implements Results<O, S> {
  readonly out: InFlight<O>[] = [];
  readonly rejected: Rejection[] = [];
  readonly duplicates: DuplicateNotice[] = [];
  readonly side: { [K in keyof S]?: S[K][] } = {};

  pass(origin: Origin, value: O): void {
    this.out.push({ value, origin });
  }

  reject(record: InFlight<unknown>, code: ReasonCode, detail: string): void {
    this.rejected.push({ record, code, detail });
  }

  duplicate(record: InFlight<unknown>, kind: DuplicateKind, firstSeen: string | null): void {
    this.duplicates.push({ record, kind, firstSeen });
  }

  emitSide<K extends keyof S>(name: K, row: S[K]): void {
    const rows = this.side[name];
    if (rows) rows.push(row);
    else this.side[name] = [row];
  }
}

/** An operator of any types: what a built chain stores once `PipelineBuilder.pipe` has checked its links. */
// biome-ignore lint/suspicious/noExplicitAny: the link types were checked when the chain was built
export type AnyOperator = Operator<any, any, any>;
