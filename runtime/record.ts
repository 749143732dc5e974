/**
 * What travels through an operator chain: a value plus where it came from.
 *
 * The origin is the record's chain of custody inside the worker: the exact source bytes (hash, headers) and their
 * position in the log. It never changes as the value is transformed, so every output, dead letter and duplicate can
 * name the raw record it descends from.
 */

export interface Header {
  readonly key: string;
  readonly value: Buffer | null;
}

export interface Origin {
  /** Logical source name: a Kafka topic, or `file:<name>` / `simulator` in embedded mode. */
  readonly topic: string;
  readonly partition: number;
  /** Position in the partition. Kafka offsets stay far below 2^53, so a number is exact. */
  readonly offset: number;
  /** Wall-clock ms when the worker consumed the record. */
  readonly consumedAt: number;
  /** Hex sha256 of `raw`: what the raw plane stores and every dead letter cites. */
  readonly rawSha256: string;
  /** The record's bytes exactly as consumed (kept for the batch's lifetime only, for dead letters). */
  readonly raw: Buffer;
  readonly headers: readonly Header[];
  /** The Kafka record key (the device id by contract), when there is one. */
  readonly key: string | null;
  /**
   * When the producer wrote the record (the Kafka record timestamp, epoch ms), when the source has one. End-to-end
   * latency (event lag) is measured from it to the commit that makes the record's outputs durable.
   */
  readonly producedAt?: number;
}

export interface InFlight<T> {
  readonly value: T;
  readonly origin: Origin;
}

/**
 * A compact owner token for keyed state (see runtime/state.ts): `partition:offset` of an origin, unique among the
 * records of one source topic. An operator that reads several sources (co-partitioned: the same partition numbers)
 * needs the source too: `lane` (the source's position in the definition) marks every source but the first, as
 * `partition:offset/lane`, so the first source keeps the tokens changelogs written before multi-source pipelines hold.
 */
export function originToken(origin: Origin, lane = 0): string {
  return lane === 0 ? `${origin.partition}:${origin.offset}` : `${origin.partition}:${origin.offset}/${lane}`;
}

export function withValue<T, U>(record: InFlight<T>, value: U): InFlight<U> {
  return { value, origin: record.origin };
}
