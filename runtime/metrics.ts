/**
 * Worker metrics (prom-client), served at `/metrics` per worker.
 *
 * Labels come from small fixed sets only: pipeline and operator names (from the pipeline definition), stage,
 * reason codes (the fixed table), duplicate kinds, table and topic names, partition numbers. Never a device id,
 * patient ref or any value from a record.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client';

const LATENCY_BUCKETS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10];
/** Event lag spans milliseconds (a steady stream) to minutes (a backlog after an outage). */
const EVENT_LAG_BUCKETS = [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900];
/**
 * Output latency: fine around 100 ms (the clinical alerts' budget from receipt), up to an hour (a device uploading
 * what it buffered offline is late by its event time).
 */
const OUTPUT_LATENCY_BUCKETS = [
  0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300, 900, 3600,
];
/** Where an output's latency is measured from (the `from` label of `vigil_output_latency_seconds`). */
export type OutputLatencyFrom = 'receipt' | 'observed';

export class PipelineMetrics {
  readonly registry: Registry;
  readonly consumed: Counter<'pipeline'>;
  readonly emitted: Counter<'pipeline'>;
  readonly deadLetters: Counter<'pipeline' | 'stage' | 'reason'>;
  readonly duplicates: Counter<'pipeline' | 'kind'>;
  readonly operatorIn: Counter<'pipeline' | 'operator'>;
  readonly operatorOut: Counter<'pipeline' | 'operator'>;
  readonly operatorSeconds: Histogram<'pipeline' | 'operator'>;
  readonly batchSeconds: Histogram<'pipeline' | 'stage'>;
  readonly batchRecords: Histogram<'pipeline'>;
  readonly inferenceSeconds: Histogram<'model' | 'version'>;
  readonly consumerLag: Gauge<'pipeline' | 'topic' | 'partition'>;
  readonly sinkQueueDepth: Gauge<'pipeline' | 'sink'>;
  readonly pausedPartitions: Gauge<'pipeline'>;
  readonly sinkInsertSeconds: Histogram<'table'>;
  readonly sinkRows: Counter<'table'>;
  readonly sinkQuarantined: Counter<'table' | 'reason'>;
  readonly transactions: Counter<'pipeline' | 'outcome'>;
  readonly endToEndSeconds: Histogram<'pipeline'>;
  readonly outputLatency: Histogram<'pipeline' | 'output' | 'from'>;
  readonly stateEvictions: Gauge<'state'>;
  readonly stateRestoreSeconds: Histogram<'pipeline'>;
  readonly stateRestoredRecords: Counter<'pipeline'>;
  readonly stateChanges: Counter<'pipeline'>;
  readonly accountingViolations: Counter<'pipeline'>;
  readonly dependencyRetries: Counter<'dependency'>;
  readonly dependencyUp: Gauge<'dependency'>;

  constructor(registry = new Registry()) {
    this.registry = registry;
    const r = [registry];
    this.consumed = new Counter({
      name: 'vigil_records_consumed_total',
      help: 'Records read from the source.',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.emitted = new Counter({
      name: 'vigil_records_emitted_total',
      help: 'Records that completed the chain.',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.deadLetters = new Counter({
      name: 'vigil_dead_letters_total',
      help: 'Records sent to the dead-letter path, by stage and reason code.',
      labelNames: ['pipeline', 'stage', 'reason'],
      registers: r,
    });
    this.duplicates = new Counter({
      name: 'vigil_duplicates_total',
      help: 'Intentional drops of copies (counted apart from failures).',
      labelNames: ['pipeline', 'kind'],
      registers: r,
    });
    this.operatorIn = new Counter({
      name: 'vigil_operator_records_in_total',
      help: 'Records into an operator.',
      labelNames: ['pipeline', 'operator'],
      registers: r,
    });
    this.operatorOut = new Counter({
      name: 'vigil_operator_records_out_total',
      help: 'Records out of an operator (main output).',
      labelNames: ['pipeline', 'operator'],
      registers: r,
    });
    this.operatorSeconds = new Histogram({
      name: 'vigil_operator_batch_seconds',
      help: 'Time an operator spent on one batch.',
      labelNames: ['pipeline', 'operator'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.batchSeconds = new Histogram({
      name: 'vigil_batch_seconds',
      help: 'Time per batch and stage: receive (consume + decode), process (operators), send (sinks + commit).',
      labelNames: ['pipeline', 'stage'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.batchRecords = new Histogram({
      name: 'vigil_batch_records',
      help: 'Records per micro-batch.',
      labelNames: ['pipeline'],
      buckets: [1, 10, 100, 500, 1000, 2000, 5000, 10000, 20000],
      registers: r,
    });
    this.inferenceSeconds = new Histogram({
      name: 'vigil_model_inference_seconds',
      help: 'Time of one batched model run.',
      labelNames: ['model', 'version'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.consumerLag = new Gauge({
      name: 'vigil_consumer_lag_records',
      help: 'High watermark minus next offset to process, per assigned partition.',
      labelNames: ['pipeline', 'topic', 'partition'],
      registers: r,
    });
    this.sinkQueueDepth = new Gauge({
      name: 'vigil_sink_queue_depth',
      help: 'Records processed but not yet durably acknowledged by a sink.',
      labelNames: ['pipeline', 'sink'],
      registers: r,
    });
    this.pausedPartitions = new Gauge({
      name: 'vigil_paused_partitions',
      help: 'Partitions paused for backpressure.',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.sinkInsertSeconds = new Histogram({
      name: 'vigil_clickhouse_insert_seconds',
      help: 'Time of one ClickHouse insert.',
      labelNames: ['table'],
      buckets: LATENCY_BUCKETS,
      registers: r,
    });
    this.sinkRows = new Counter({
      name: 'vigil_clickhouse_rows_total',
      help: 'Rows inserted into ClickHouse.',
      labelNames: ['table'],
      registers: r,
    });
    this.sinkQuarantined = new Counter({
      name: 'vigil_clickhouse_quarantined_rows_total',
      help:
        'Rows ClickHouse cannot store, set aside in the quarantine table instead of failing their batch, by target ' +
        'table and reason (ROW_TYPE_MISMATCH: the column checker; ROW_REFUSED_BY_STORE: refused by the engine).',
      labelNames: ['table', 'reason'],
      registers: r,
    });
    this.transactions = new Counter({
      name: 'vigil_kafka_transactions_total',
      help: 'Kafka transactions by outcome (committed, aborted).',
      labelNames: ['pipeline', 'outcome'],
      registers: r,
    });
    this.endToEndSeconds = new Histogram({
      name: 'vigil_end_to_end_latency_seconds',
      help:
        'Event lag: from the producer timestamp of a source record (Kafka CreateTime) to the commit of the ' +
        'transaction that made its outputs durable, per record.',
      labelNames: ['pipeline'],
      buckets: EVENT_LAG_BUCKETS,
      registers: r,
    });
    this.outputLatency = new Histogram({
      name: 'vigil_output_latency_seconds',
      help:
        "Per output value, to the commit of the transaction that carries it: from the worker's receipt of the " +
        'records that made it (from="receipt") and from the event time the value states, its observed_at ' +
        '(from="observed": the device clock). Labels: pipeline and output names from the definition.',
      labelNames: ['pipeline', 'output', 'from'],
      buckets: OUTPUT_LATENCY_BUCKETS,
      registers: r,
    });
    this.stateEvictions = new Gauge({
      name: 'vigil_state_evictions',
      help: 'Entries the in-memory state backend evicted for capacity before their TTL.',
      labelNames: ['state'],
      registers: r,
    });
    this.stateRestoreSeconds = new Histogram({
      name: 'vigil_state_restore_seconds',
      help: "Time to restore one input partition's keyed state from its changelog before its first record.",
      labelNames: ['pipeline'],
      buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120],
      registers: r,
    });
    this.stateRestoredRecords = new Counter({
      name: 'vigil_state_restored_records_total',
      help: 'Changelog records read back while restoring keyed state.',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.stateChanges = new Counter({
      name: 'vigil_state_changelog_records_total',
      help: 'State changes written to the changelog, inside the same transactions as the outputs.',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.accountingViolations = new Counter({
      name: 'vigil_accounting_violations_total',
      help: 'Batches where consumed != emitted + dead-lettered + duplicates (a bug: always 0).',
      labelNames: ['pipeline'],
      registers: r,
    });
    this.dependencyRetries = new Counter({
      name: 'vigil_dependency_retries_total',
      help:
        'Restarts after a dependency failed (the process backs off and resumes from committed offsets), by ' +
        'dependency: kafka, schema_registry, redis, clickhouse.',
      labelNames: ['dependency'],
      registers: r,
    });
    this.dependencyUp = new Gauge({
      name: 'vigil_dependency_up',
      help:
        'Whether the process reaches a dependency: 0 from a failure until the process makes progress again ' +
        '(first committed batch), then 1.',
      labelNames: ['dependency'],
      registers: r,
    });
  }

  /** The `/metrics` body. */
  async expose(): Promise<string> {
    return this.registry.metrics();
  }
}

/** Sums a counter's values over all label sets matching `labels` (tests and run summaries). */
export async function counterValue(counter: Counter<string>, labels: Record<string, string> = {}): Promise<number> {
  const { values } = await counter.get();
  return values
    .filter((v) => Object.entries(labels).every(([k, want]) => v.labels[k] === want))
    .reduce((sum, v) => sum + v.value, 0);
}
