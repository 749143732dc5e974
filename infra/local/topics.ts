/**
 * The project's Kafka topics as data: one place for partition counts and configs. `vigil stack up` creates them
 * (auto topic creation is off on the local broker), and anything that needs a topic's shape imports it from here.
 * Kept free of client imports so it loads anywhere (docs generators, tests, the CLI) without the native Kafka addon.
 */
import { TOPICS } from '../../runtime/endpoints.ts';

export type TopicKey = keyof typeof TOPICS;

export interface TopicSpec {
  /** The topic's name (from `TOPICS` in runtime/endpoints.ts). */
  readonly name: string;
  readonly partitions: number;
  /** Topic-level configs, as Kafka takes them (strings). */
  readonly config: Readonly<Record<string, string>>;
  readonly description: string;
}

const DAY_MS = 24 * 60 * 60 * 1000;

/** Telemetry and results: deleted by age. */
const stream = (retentionDays: number) => ({
  'cleanup.policy': 'delete',
  'retention.ms': String(retentionDays * DAY_MS),
});

/** Control topics: the latest value per key is the state (a rollout per model, an identity per device). */
const compacted = {
  'cleanup.policy': 'compact',
  'min.compaction.lag.ms': '0',
  'segment.ms': String(DAY_MS),
};

/**
 * Every topic Vigil creates, keyed like `TOPICS`.
 *
 * @example
 * import { TOPIC_SPECS } from '../infra/local/topics.ts';
 * const partitions = TOPIC_SPECS.raw.partitions; // 6
 */
export const TOPIC_SPECS: Readonly<Record<TopicKey, TopicSpec>> = {
  raw: {
    name: TOPICS.raw,
    partitions: 6,
    config: stream(7),
    description: 'Device envelopes as received (Avro, Confluent wire format), keyed by device.',
  },
  rawPriority: {
    name: TOPICS.rawPriority,
    partitions: 6,
    config: stream(7),
    description:
      'The alarm lane: device envelopes of type alarm, written apart by the gateway so a vitals backlog never delays ' +
      'them; co-partitioned with the raw topic (same key, same partition count).',
  },
  normalised: {
    name: TOPICS.normalised,
    partitions: 6,
    config: stream(7),
    description: 'Envelopes that passed decode, validation and dedupe.',
  },
  inferences: {
    name: TOPICS.inferences,
    partitions: 6,
    config: stream(30),
    description: 'Inference records (score, model version, provenance).',
  },
  clinicalAlerts: {
    name: TOPICS.clinicalAlerts,
    partitions: 3,
    config: stream(30),
    description: 'Alerts raised for clinicians.',
  },
  outcomes: {
    name: TOPICS.outcomes,
    // Keyed by patient pseudonym; rare records kept a year: calibration joins them to inferences long after.
    partitions: 3,
    config: stream(365),
    description: 'Clinical outcomes (escalation, ICU transfer, confirmed deterioration) by patient pseudonym.',
  },
  alertActions: {
    name: TOPICS.alertActions,
    // Co-partitioned with the inference and normalised topics (6, keyed by device): the alerts pipeline reads all
    // three, and an alert's state on partition p must see the actions on its patient's device too.
    partitions: 6,
    config: stream(30),
    description:
      'Acknowledgements and escalations of clinical alerts by people (vigil alerts ack|escalate), keyed by device.',
  },
  deadLetter: {
    name: TOPICS.deadLetter,
    partitions: 3,
    config: stream(30),
    description: 'Records that left the chain, with a reason code; kept long enough to investigate and replay.',
  },
  duplicates: {
    name: TOPICS.duplicates,
    partitions: 3,
    config: stream(7),
    description: 'Intentional drops (replays, duplicates), counted apart from failures.',
  },
  gatewayRejections: {
    name: TOPICS.gatewayRejections,
    partitions: 3,
    config: stream(90),
    description: 'Every request or event the gateway refused, with its reason code and evidence (never the payload).',
  },
  driftHistograms: {
    name: TOPICS.driftHistograms,
    partitions: 3,
    config: stream(30),
    description: 'Per-window feature and score histograms for drift detection.',
  },
  modelRollouts: {
    name: TOPICS.modelRollouts,
    partitions: 1,
    config: compacted,
    description: 'Model rollout decisions (compacted: latest per model).',
  },
  deviceIdentity: {
    name: TOPICS.deviceIdentity,
    partitions: 1,
    config: compacted,
    description:
      'Device identity changes (enrolments, certificates, status, assignments), one key per change so compaction ' +
      'keeps the whole history (identity/types.ts).',
  },
  auditLog: {
    name: TOPICS.auditLog,
    partitions: 1,
    config: { 'cleanup.policy': 'delete', 'retention.ms': '-1', 'retention.bytes': '-1' },
    description: 'The append-only audit log (Merkle-tree entries and signed checkpoints): unlimited retention.',
  },
};

export const TOPIC_LIST: readonly TopicSpec[] = Object.values(TOPIC_SPECS);
