/**
 * The fleet over the gateway: the simulated fleet's records, signed by each device's key and sent over its own
 * mutual-TLS HTTP/2 session, several events per request, with the truth of what the gateway must answer
 * (./gateway-truth.ts) beside what it did answer.
 *
 * Time: the stream is cut into windows of simulated receipt time (`windowMs`, default 5 min: each device uploads what
 * it has once per window, in at most `maxEventsPerRequest` events per request). With a simulated clock (the embedded
 * gateway of `npm start`), the driver sets that clock to the window's end before sending it, so hours of telemetry
 * pass in seconds and every time check sees simulated time. Against a gateway on the system clock (`vigil simulate
 * --gateway`), each window's device times are shifted so that the window ends now: every event keeps its lag behind
 * receipt, and an event within 5 s of the skew bound is left out (`skipped`) since the two clocks differ by the
 * network's milliseconds.
 *
 * @example
 * const report = await driveFleet({ url, caPem, credentials, simulation: { devices: 50, events: 2000 },
 *   limits: GATEWAY_DEFAULTS, clock: { kind: 'simulated', clock: gatewayClock } });
 * report.truth.rejected; // { CLOCK_SKEW: 3, MALFORMED: 9, NONCE_REPLAYED: 61, ... }
 */
import type { ManualClock } from '../runtime/clock.ts';
import type { Envelope } from '../schemas/types.ts';
import { signedLineFor } from './gateway-faults.ts';
import { type DeviceCredentials, deviceSigner, type JwsSigner } from './gateway-sign.ts';
import { DeviceConnection, type GatewayAnswer } from './gateway-transport.ts';
import {
  type GatewayModel,
  type GatewayOutcome,
  type GatewayTruth,
  GatewayTruthTally,
  sortedCounts,
} from './gateway-truth.ts';
import { Prng } from './prng.ts';
import {
  REPLAY_MAX_AGE_MS,
  type SimulatedRecord,
  type SimulateOptions,
  simulateFleet,
  type Truth,
  type TruthSummary,
} from './simulate.ts';
import { ulidTime } from './ulid.ts';

export type FleetClock = { readonly kind: 'simulated'; readonly clock: ManualClock } | { readonly kind: 'system' };

export interface GatewayFleetOptions {
  readonly url: string;
  /** The CA the gateway's server certificate chains to (the dev PKI's CA). */
  readonly caPem: string;
  /**
   * Every fleet device's credentials, by the simulator's device id; the device sends as the id its certificate names
   * (the same, or prefixed: ./gateway-enrol.ts `devicePrefix`).
   */
  readonly credentials: ReadonlyMap<string, DeviceCredentials>;
  readonly simulation: SimulateOptions;
  readonly model: GatewayModel;
  readonly clock: FleetClock;
  /** Simulated receipt time per upload window (default 300,000 ms). */
  readonly windowMs?: number;
  /** Events per request at most (default 100). */
  readonly maxEventsPerRequest?: number;
  /** Devices sending at once (default 64). */
  readonly concurrency?: number;
  /** Keeps the skew bound in mind in system-clock mode (events within 5 s of it are skipped). */
  readonly skewMs: number;
}

/** What the gateway answered, counted the same way as the truth. */
export interface ObservedAnswers {
  readonly requests: number;
  readonly accepted: number;
  readonly rejected: Record<string, number>;
  readonly rejectedRequests: Record<string, number>;
  /** Requests that got no HTTP answer (refused handshake, reset). */
  readonly unanswered: number;
}

/** Counts answers as they come back. */
export class AnswerTally {
  #requests = 0;
  #accepted = 0;
  #unanswered = 0;
  readonly #rejected = new Map<string, number>();
  readonly #rejectedRequests = new Map<string, number>();

  add(answer: GatewayAnswer): void {
    this.#requests++;
    if (answer.status === 0) {
      this.#unanswered++;
      return;
    }
    if (answer.status === 202) {
      this.#accepted += answer.accepted;
      for (const r of answer.rejected) this.#rejected.set(r.reason, (this.#rejected.get(r.reason) ?? 0) + 1);
      return;
    }
    const reason = answer.reason ?? `HTTP_${answer.status}`;
    this.#rejected.set(reason, (this.#rejected.get(reason) ?? 0) + 1);
    this.#rejectedRequests.set(reason, (this.#rejectedRequests.get(reason) ?? 0) + 1);
  }

  summary(): ObservedAnswers {
    return {
      requests: this.#requests,
      accepted: this.#accepted,
      rejected: sortedCounts(this.#rejected),
      rejectedRequests: sortedCounts(this.#rejectedRequests),
      unanswered: this.#unanswered,
    };
  }
}

/** A line sent: the bytes, and what a resend of it must carry to the model. */
interface SentLine {
  readonly line: string;
  readonly deviceId: string;
  readonly nonce: string;
  readonly sequence: number;
  readonly observedAt: number;
  readonly worker: Truth;
  readonly alarm: boolean;
}

/** One line to plan: its bytes, what the model reads of its envelope, its own fault and its truth downstream. */
export interface PlannedLine {
  readonly line: string;
  readonly envelope: Pick<Envelope, 'nonce' | 'sequence' | 'observed_at' | 'event_type'>;
  readonly fault: GatewayOutcome | null;
  readonly worker: Truth;
}

/** One planned request: a device's lines in one window, with each line's predicted outcome. */
interface PlannedRequest {
  readonly deviceId: string;
  readonly body: string;
  readonly lines: number;
}

/**
 * Drives the fleet session by session and window by window. `fleet.run()` sends the simulated stream; the drills
 * (./gateway-drills.ts) send through the same fleet afterwards, sharing its model, tallies and sessions.
 */
export class GatewayFleet {
  readonly options: GatewayFleetOptions;
  readonly truth = new GatewayTruthTally();
  readonly answers = new AnswerTally();
  readonly #connections = new Map<string, DeviceConnection>();
  readonly #signers = new Map<string, JwsSigner>();
  /** Lines kept for resends (duplicates and replays re-send them byte for byte), by nonce, oldest first. */
  readonly #sent = new Map<string, SentLine & { readonly at: number }>();
  /** Each device's newest vital-signs envelope (as sent) and highest sequence: templates for the drills. */
  readonly lastVitals = new Map<string, Envelope>();
  readonly highestSequence = new Map<string, number>();
  #skipped = 0;
  #simulator: TruthSummary | null = null;

  constructor(options: GatewayFleetOptions) {
    this.options = options;
  }

  /** The gateway's time for what is sent next (the simulated clock, or the system's). */
  now(): number {
    return this.options.clock.kind === 'simulated' ? this.options.clock.clock.now() : Date.now();
  }

  connection(deviceId: string, tls: { certPem: string; keyPem: string } = this.#credentials(deviceId)) {
    let c = this.#connections.get(deviceId);
    if (!c) {
      c = new DeviceConnection(this.options.url, this.options.caPem, tls);
      this.#connections.set(deviceId, c);
    }
    return c;
  }

  /** The id a fleet device is enrolled (and sends) as. */
  enrolledId(deviceId: string): string {
    return this.#credentials(deviceId).deviceId;
  }

  #credentials(deviceId: string): DeviceCredentials {
    const c = this.options.credentials.get(deviceId);
    if (!c) throw new Error(`no credentials for device ${deviceId}: enrol the fleet first`);
    return c;
  }

  signer(deviceId: string): JwsSigner {
    let s = this.#signers.get(deviceId);
    if (!s) {
      s = deviceSigner(this.#credentials(deviceId));
      this.#signers.set(deviceId, s);
    }
    return s;
  }

  /**
   * Plans one request's lines against the model at `now` (token bucket first, then each event) and counts the truth.
   * Returns the body to send.
   */
  plan(
    deviceId: string,
    lines: readonly PlannedLine[],
    now: number,
    options: { bucketDevice?: string; remember?: boolean } = {},
  ): PlannedRequest {
    const model = this.options.model;
    if (!model.admit(options.bucketDevice ?? deviceId, lines.length, now)) {
      this.truth.request(lines.length, 'RATE_LIMITED');
    } else {
      this.truth.request(lines.length, null);
      for (const l of lines) {
        const fault = l.fault === 'accepted' ? null : l.fault;
        const outcome = model.outcome(
          {
            deviceId,
            nonce: l.envelope.nonce ?? '',
            sequence: l.envelope.sequence ?? 0,
            observedAt: l.envelope.observed_at,
            fault,
          },
          now,
        );
        this.truth.event(outcome, l.envelope.event_type === 'alarm', l.worker);
      }
    }
    return { deviceId, body: lines.map((l) => l.line).join('\n'), lines: lines.length };
  }

  /** Sends planned requests: devices in parallel (at most `concurrency`), each device's requests in order. */
  async send(requests: readonly PlannedRequest[]): Promise<GatewayAnswer[]> {
    const byDevice = new Map<string, PlannedRequest[]>();
    for (const r of requests) byDevice.set(r.deviceId, [...(byDevice.get(r.deviceId) ?? []), r]);
    const queues = [...byDevice.values()];
    const answers: GatewayAnswer[] = [];
    const worker = async () => {
      for (let q = queues.shift(); q; q = queues.shift()) {
        for (const r of q) {
          const answer = await this.#post(r);
          this.answers.add(answer);
          answers.push(answer);
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.options.concurrency ?? 64, queues.length) }, worker));
    return answers;
  }

  /**
   * Posts a request; one the gateway never answered (the connection dropped: a timer on a starved machine, a reset) is
   * sent again on a fresh session, as a device would, up to twice. A retry is counted, since a request the gateway
   * did process before the answer was lost comes back refused as a replay.
   */
  async #post(r: PlannedRequest): Promise<GatewayAnswer> {
    let answer = await this.connection(r.deviceId).post(r.body);
    for (let attempt = 0; answer.status === 0 && attempt < 2; attempt++) {
      this.#retries++;
      await this.#connections.get(r.deviceId)?.close();
      this.#connections.delete(r.deviceId);
      answer = await this.connection(r.deviceId).post(r.body);
    }
    return answer;
  }

  #retries = 0;

  /** Requests sent again after the gateway left them unanswered. */
  get retries(): number {
    return this.#retries;
  }

  /** Sends the simulated stream window by window; returns the simulator's own summary. */
  async run(): Promise<TruthSummary> {
    const windowMs = this.options.windowMs ?? 300_000;
    const perRequest = this.options.maxEventsPerRequest ?? 100;
    const prng = Prng.derive(this.options.simulation.seed ?? 1, 'gateway-faults');
    const stream = simulateFleet(this.options.simulation);
    let window: { end: number; lines: Map<string, PlannedLine[]> } | null = null;
    let streamTime = -Infinity;

    const flush = async () => {
      if (!window) return;
      const current = window;
      window = null;
      const now = this.#enterWindow(current.end);
      const planned: PlannedRequest[] = [];
      for (const [deviceId, lines] of current.lines) {
        for (let i = 0; i < lines.length; i += perRequest) {
          planned.push(this.plan(deviceId, lines.slice(i, i + perRequest), now));
        }
      }
      await this.send(planned);
    };

    for (;;) {
      const next = stream.next();
      if (next.done) {
        this.#simulator = next.value;
        break;
      }
      const record = next.value;
      if (record.truth !== 'duplicate') {
        const at = record.kind === 'raw' ? record.source.received_at : record.envelope.received_at;
        streamTime = Math.max(streamTime, at);
      }
      const end = (Math.floor(streamTime / windowMs) + 1) * windowMs;
      if (window && end > window.end) await flush();
      if (!window) window = { end, lines: new Map() };
      const line = this.#lineFor(record, prng, window.end);
      if (!line) continue;
      const lines = window.lines.get(record.key) ?? [];
      lines.push(line);
      window.lines.set(record.key, lines);
    }
    await flush();
    return this.#simulator as TruthSummary;
  }

  /** The gateway time a window is sent at: sets the simulated clock, or notes the shift onto the system clock. */
  #shift = 0;
  #enterWindow(end: number): number {
    if (this.options.clock.kind === 'simulated') {
      if (end > this.options.clock.clock.now()) this.options.clock.clock.set(end);
      return this.options.clock.clock.now();
    }
    return Date.now();
  }

  /** The line for a record (a resend re-sends its original), or null when it is skipped. */
  #lineFor(record: SimulatedRecord, prng: Prng, windowEnd: number): PlannedLine | null {
    const resend = record.truth === 'duplicate' || record.truth === 'replay';
    const envelope = record.kind === 'raw' ? record.source : record.envelope;
    if (resend) {
      const original = this.#sent.get(envelope.nonce ?? '');
      if (!original) return null; // its original was skipped
      return {
        line: original.line,
        envelope: {
          nonce: original.nonce,
          sequence: original.sequence,
          observed_at: original.observedAt,
          event_type: envelope.event_type,
        },
        fault: null,
        worker: original.worker,
      };
    }
    const enrolledId = this.enrolledId(record.key);
    let shifted = envelope.device_id === enrolledId ? envelope : { ...envelope, device_id: enrolledId };
    if (this.options.clock.kind === 'system') {
      // Shift so the window ends now: the event keeps its lag behind receipt.
      this.#shift = Date.now() - windowEnd;
      const lag = windowEnd - envelope.observed_at;
      if (Math.abs(Math.abs(lag) - this.options.skewMs) < 5_000) {
        this.#skipped++;
        return null;
      }
      const observedAt = envelope.observed_at + this.#shift;
      shifted = { ...shifted, observed_at: observedAt, event_id: ulidTime(observedAt) + envelope.event_id.slice(10) };
    }
    const shiftedRecord = record.kind === 'raw' ? { ...record, source: shifted } : { ...record, envelope: shifted };
    const signed = signedLineFor(shiftedRecord, this.signer(record.key), prng);
    this.#remember(
      {
        line: signed.line,
        deviceId: record.key,
        nonce: shifted.nonce ?? '',
        sequence: shifted.sequence ?? 0,
        observedAt: shifted.observed_at,
        worker: signed.worker,
        alarm: shifted.event_type === 'alarm',
      },
      windowEnd,
    );
    if (signed.fault === null) {
      if (shifted.event_type === 'vital_signs' && record.truth === 'valid') this.lastVitals.set(record.key, shifted);
      this.highestSequence.set(record.key, Math.max(this.highestSequence.get(record.key) ?? 0, shifted.sequence ?? 0));
    }
    return { line: signed.line, envelope: shifted, fault: signed.fault, worker: signed.worker };
  }

  #remember(line: SentLine, at: number): void {
    this.#sent.set(line.nonce, { ...line, at });
    // Replays reach back at most REPLAY_MAX_AGE_MS of simulated receipt time: older lines can go.
    for (const [nonce, l] of this.#sent) {
      if (at - l.at <= REPLAY_MAX_AGE_MS + 2 * (this.options.windowMs ?? 300_000)) break;
      this.#sent.delete(nonce);
    }
  }

  get skipped(): number {
    return this.#skipped;
  }

  summary(): {
    truth: GatewayTruth;
    observed: ObservedAnswers;
    skipped: number;
    retries: number;
    simulator: TruthSummary | null;
  } {
    return {
      truth: this.truth.summary(),
      observed: this.answers.summary(),
      skipped: this.#skipped,
      retries: this.#retries,
      simulator: this.#simulator,
    };
  }

  async close(): Promise<void> {
    await Promise.all([...this.#connections.values()].map((c) => c.close()));
    this.#connections.clear();
  }
}
