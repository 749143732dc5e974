/**
 * The gateway's side of the fleet simulator's truth: what the gateway must make of each signed event the driver
 * sends, predicted from the driver's own knowledge (what it sent, when, with which key) and the gateway's limits,
 * never from the gateway's answers, so a test can compare the two exactly.
 *
 * The model follows the gateway's order (gateway/verify.ts, then gateway/state.ts): the device's token bucket for the
 * whole request, then per event the checks of the event alone (shape, key, signature, device, skew against the
 * gateway's clock, assignment), then its nonce (remembered per device for twice the skew bound) and its sequence
 * (a 64-wide window). Each injected fault breaks exactly one thing, so its code never depends on that order; resends
 * are where checks meet: a resent event is CLOCK_SKEW once its observed_at is beyond the skew bound, else
 * NONCE_REPLAYED (its nonce is still remembered then), and a fresh nonce on an old sequence is SEQUENCE_REPLAYED.
 */
import type { GatewayReason } from '../gateway/codes.ts';
import type { Truth } from './simulate.ts';

/** What the model needs of the gateway's limits (gateway/limits.ts). */
export interface GatewayTruthLimits {
  /** Allowed |observed_at - gateway clock|; nonces are remembered twice this long. */
  readonly skewMs: number;
  readonly replayWindow: number;
  readonly deviceRatePerSec: number;
  readonly deviceBurst: number;
}

/** What the gateway must answer for one event: accepted, or refused with a code. */
export type GatewayOutcome = 'accepted' | GatewayReason;

/** One event as the model sees it. */
export interface ModelledEvent {
  readonly deviceId: string;
  readonly nonce: string;
  readonly sequence: number;
  readonly observedAt: number;
  /** A fault that breaks the event on its own (signature, key, device id, assignment, shape), if any. */
  readonly fault: GatewayReason | null;
}

interface DeviceModel {
  highest: number;
  readonly seen: Set<number>;
  tokens: number;
  refilledAt: number;
}

/** Predicts the gateway's answers, device by device, in the order the driver sends. */
export class GatewayModel {
  readonly #limits: GatewayTruthLimits;
  readonly #nonces = new Map<string, number>();
  readonly #devices = new Map<string, DeviceModel>();
  #nonceSweepAt = 0;

  constructor(limits: GatewayTruthLimits) {
    this.#limits = limits;
  }

  #device(id: string, now: number): DeviceModel {
    let d = this.#devices.get(id);
    if (!d) {
      d = { highest: 0, seen: new Set(), tokens: this.#limits.deviceBurst, refilledAt: now };
      this.#devices.set(id, d);
    }
    return d;
  }

  /**
   * Whether a request of `events` events from `deviceId` passes the device's token bucket at `now` (taking them if
   * so). A request that needs more tokens than are left is refused whole (429).
   */
  admit(deviceId: string, events: number, now: number): boolean {
    const d = this.#device(deviceId, now);
    const { deviceBurst, deviceRatePerSec } = this.#limits;
    d.tokens = Math.min(deviceBurst, d.tokens + (Math.max(0, now - d.refilledAt) / 1000) * deviceRatePerSec);
    d.refilledAt = now;
    if (d.tokens < events) return false;
    d.tokens -= events;
    return true;
  }

  /** The outcome of one event received at `now`; an accepted event's nonce and sequence are remembered. */
  outcome(event: ModelledEvent, now: number): GatewayOutcome {
    if (event.fault) return event.fault;
    if (Math.abs(event.observedAt - now) > this.#limits.skewMs) return 'CLOCK_SKEW';
    this.#sweep(now);
    const nonceKey = `${event.deviceId}\u0000${event.nonce}`;
    const seenAt = this.#nonces.get(nonceKey);
    if (seenAt !== undefined && now - seenAt < 2 * this.#limits.skewMs) return 'NONCE_REPLAYED';
    const d = this.#device(event.deviceId, now);
    if (event.sequence <= d.highest - this.#limits.replayWindow || d.seen.has(event.sequence)) {
      return 'SEQUENCE_REPLAYED';
    }
    this.#nonces.set(nonceKey, now);
    d.seen.add(event.sequence);
    if (event.sequence > d.highest) {
      d.highest = event.sequence;
      const floor = d.highest - this.#limits.replayWindow;
      if (d.seen.size > 4 * this.#limits.replayWindow) for (const s of d.seen) if (s <= floor) d.seen.delete(s);
    }
    return 'accepted';
  }

  /** Forgets nonces the gateway has forgotten too (keeps memory flat over long runs). */
  #sweep(now: number): void {
    const ttl = 2 * this.#limits.skewMs;
    if (now - this.#nonceSweepAt < ttl) return;
    this.#nonceSweepAt = now;
    for (const [nonce, at] of this.#nonces) if (now - at >= ttl) this.#nonces.delete(nonce);
  }
}

/** The driver's truth: what the gateway must have accepted and refused, and what the workers must make of it. */
export interface GatewayTruth {
  /** Events sent, each counted once (a whole-request refusal counts every event of the request). */
  readonly events: number;
  readonly requests: number;
  /** Events the gateway must accept (each on the raw topic exactly once). */
  readonly accepted: number;
  /** Of the accepted, by lane: `priority` holds the alarms. */
  readonly lanes: { readonly raw: number; readonly priority: number };
  /** Rejection records the gateway must write, by reason: one per refused event, one per refused request. */
  readonly rejected: Readonly<Record<string, number>>;
  /** Requests refused whole, by reason (also in `rejected`). */
  readonly rejectedRequests: Readonly<Record<string, number>>;
  /** What the pipeline must make of the accepted events: valid, or a worker dead letter by reason. */
  readonly worker: { readonly valid: number; readonly deadLetters: Readonly<Record<string, number>> };
}

/** Counts the truth as the driver plans what it sends. */
export class GatewayTruthTally {
  #events = 0;
  #requests = 0;
  #accepted = 0;
  #raw = 0;
  #priority = 0;
  #valid = 0;
  readonly #rejected = new Map<string, number>();
  readonly #rejectedRequests = new Map<string, number>();
  readonly #deadLetters = new Map<string, number>();

  request(events: number, refusedWhole: GatewayReason | null): void {
    this.#requests++;
    if (refusedWhole) {
      this.#events += events;
      bump(this.#rejected, refusedWhole);
      bump(this.#rejectedRequests, refusedWhole);
    }
  }

  /** One event of an admitted request: its outcome and, when accepted, its lane and what the workers must do. */
  event(outcome: GatewayOutcome, alarm: boolean, worker: Truth): void {
    this.#events++;
    if (outcome !== 'accepted') {
      bump(this.#rejected, outcome);
      return;
    }
    this.#accepted++;
    if (alarm) this.#priority++;
    else this.#raw++;
    if (worker === 'valid') this.#valid++;
    else if (worker.startsWith('malformed:')) bump(this.#deadLetters, worker.slice('malformed:'.length));
    else throw new Error(`an accepted event cannot be a ${worker}: the gateway refuses resends`);
  }

  summary(): GatewayTruth {
    return {
      events: this.#events,
      requests: this.#requests,
      accepted: this.#accepted,
      lanes: { raw: this.#raw, priority: this.#priority },
      rejected: sortedCounts(this.#rejected),
      rejectedRequests: sortedCounts(this.#rejectedRequests),
      worker: { valid: this.#valid, deadLetters: sortedCounts(this.#deadLetters) },
    };
  }
}

function bump(m: Map<string, number>, k: string): void {
  m.set(k, (m.get(k) ?? 0) + 1);
}

export function sortedCounts(m: Map<string, number> | Record<string, number>): Record<string, number> {
  const entries = m instanceof Map ? [...m] : Object.entries(m);
  return Object.fromEntries(entries.filter(([, n]) => n > 0).sort(([a], [b]) => (a < b ? -1 : 1)));
}
