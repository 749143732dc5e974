/**
 * The gateway's shared state: per-device token buckets, the nonce cache and the per-device replay windows, behind
 * one call per request (`admit`) so the Redis implementation (adapters/redis/gateway-state.ts) is one round trip.
 * This module holds the contract and the in-memory implementation (one gateway, tests, the embedded run); both pass
 * test/conformance/gateway-state.ts.
 *
 * Why `release`: a request whose accepted events could not be written (the raw sink failed, the device got 503) must
 * not leave its nonces and sequences claimed, or the device's retry of the very same signed events would be refused as
 * a replay. Claims carry the request's owner token and `release` undoes only that owner's claims.
 */
import type { Clock } from '../runtime/clock.ts';

/** The replay-relevant part of one signature-verified event. */
export interface ReplayClaim {
  readonly nonce: string;
  /** A non-negative safe integer. */
  readonly sequence: number;
}

export interface AdmitRequest {
  readonly deviceId: string;
  /** Unique per request: `release` undoes only the claims this owner made. */
  readonly owner: string;
  /** Tokens to take from the device's bucket: the number of events in the request, valid or not. */
  readonly cost: number;
  /** Claims in request order: a later claim sees an earlier one of the same request. */
  readonly claims: readonly ReplayClaim[];
}

export type ClaimVerdict = 'fresh' | 'nonce_replayed' | 'sequence_replayed';

export type AdmitResult =
  | { readonly admitted: true; readonly verdicts: readonly ClaimVerdict[] }
  /** The device's bucket lacks `cost` tokens: nothing was taken or claimed. */
  | { readonly admitted: false; readonly retryAfterMs: number };

export interface GatewayState {
  /** Takes the tokens and, if there were enough, classifies and claims every nonce and sequence, atomically. */
  admit(request: AdmitRequest): Promise<AdmitResult>;
  /** Undoes the claims `owner` made for these events (those it did not make are left alone). */
  release(deviceId: string, owner: string, claims: readonly ReplayClaim[]): Promise<void>;
  close(): Promise<void>;
}

/** The parameters both implementations take (from GatewayLimits). */
export interface GatewayStateParams {
  readonly ratePerSec: number;
  readonly burst: number;
  /** How long a nonce is remembered (2 x the skew bound). */
  readonly nonceTtlMs: number;
  /** How long a device's replay window outlives its last accepted event. */
  readonly sequenceTtlMs: number;
}

export const REPLAY_WINDOW = 64;

/**
 * A token bucket (local: per connection; the per-device ones live in the state). Time from the caller's clock.
 *
 * @example
 * const bucket = new TokenBucket(50, 100, clock);
 * if (!bucket.take(1)) answer429(bucket.retryAfterMs(1));
 */
export class TokenBucket {
  #tokens: number;
  #at: number;

  constructor(
    private readonly ratePerSec: number,
    private readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.#tokens = burst;
    this.#at = clock.now();
  }

  #refill(): void {
    const now = this.clock.now();
    if (now > this.#at) this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#at) * this.ratePerSec) / 1000);
    this.#at = Math.max(this.#at, now);
  }

  take(cost: number): boolean {
    this.#refill();
    if (this.#tokens < cost) return false;
    this.#tokens -= cost;
    return true;
  }

  /** How long until `cost` tokens are there (0 when they are). */
  retryAfterMs(cost: number): number {
    this.#refill();
    return this.#tokens >= cost ? 0 : Math.ceil(((cost - this.#tokens) * 1000) / this.ratePerSec);
  }
}

interface Window {
  high: number;
  /** Bit i set: sequence high - i was accepted (i < 64). */
  seen: bigint;
  expiresAt: number;
}

const ALL = (1n << 64n) - 1n;

/**
 * The in-memory GatewayState: one gateway process (the embedded run, tests). Expired nonces are dropped as time
 * passes (the cache is in insertion order and every entry has the same TTL, so the oldest expire first).
 *
 * @example
 * const state = new MemoryGatewayState({ ratePerSec: 100, burst: 1000, nonceTtlMs: 600_000, sequenceTtlMs: 86_400_000 }, clock);
 */
export class MemoryGatewayState implements GatewayState {
  readonly #buckets = new Map<string, { tokens: number; at: number }>();
  readonly #nonces = new Map<string, { owner: string; expiresAt: number }>();
  readonly #windows = new Map<string, Window>();

  constructor(
    private readonly params: GatewayStateParams,
    private readonly clock: Clock,
  ) {}

  async admit(request: AdmitRequest): Promise<AdmitResult> {
    const now = this.clock.now();
    this.#expire(now);
    const { ratePerSec, burst } = this.params;
    const bucket = this.#buckets.get(request.deviceId) ?? { tokens: burst, at: now };
    const tokens = Math.min(burst, bucket.tokens + (Math.max(0, now - bucket.at) * ratePerSec) / 1000);
    if (tokens < request.cost) {
      this.#buckets.set(request.deviceId, { tokens, at: Math.max(bucket.at, now) });
      return { admitted: false, retryAfterMs: Math.ceil(((request.cost - tokens) * 1000) / ratePerSec) };
    }
    this.#buckets.set(request.deviceId, { tokens: tokens - request.cost, at: Math.max(bucket.at, now) });

    const verdicts: ClaimVerdict[] = [];
    for (const claim of request.claims) {
      const nonceKey = `${request.deviceId}\u0000${claim.nonce}`;
      if (this.#nonces.has(nonceKey)) {
        verdicts.push('nonce_replayed');
        continue;
      }
      let window = this.#windows.get(request.deviceId);
      if (window && window.expiresAt <= now) window = undefined;
      if (window && !windowAccepts(window, claim.sequence)) {
        verdicts.push('sequence_replayed');
        continue;
      }
      this.#nonces.delete(nonceKey); // re-inserted last: insertion order stays expiry order
      this.#nonces.set(nonceKey, { owner: request.owner, expiresAt: now + this.params.nonceTtlMs });
      window ??= { high: claim.sequence, seen: 0n, expiresAt: 0 };
      markSeen(window, claim.sequence);
      window.expiresAt = now + this.params.sequenceTtlMs;
      this.#windows.set(request.deviceId, window);
      verdicts.push('fresh');
    }
    return { admitted: true, verdicts };
  }

  async release(deviceId: string, owner: string, claims: readonly ReplayClaim[]): Promise<void> {
    const window = this.#windows.get(deviceId);
    for (const claim of claims) {
      const nonceKey = `${deviceId}\u0000${claim.nonce}`;
      if (this.#nonces.get(nonceKey)?.owner !== owner) continue; // not ours: leave it (and its sequence) alone
      this.#nonces.delete(nonceKey);
      if (window) {
        const offset = window.high - claim.sequence;
        if (offset >= 0 && offset < REPLAY_WINDOW) window.seen &= ~(1n << BigInt(offset));
      }
    }
  }

  async close(): Promise<void> {}

  #expire(now: number): void {
    for (const [key, entry] of this.#nonces) {
      if (entry.expiresAt > now) break;
      this.#nonces.delete(key);
    }
  }
}

function windowAccepts(window: Window, sequence: number): boolean {
  if (sequence > window.high) return true;
  const offset = window.high - sequence;
  if (offset >= REPLAY_WINDOW) return false;
  return (window.seen & (1n << BigInt(offset))) === 0n;
}

function markSeen(window: Window, sequence: number): void {
  if (sequence > window.high) {
    const shift = sequence - window.high;
    window.seen = shift >= REPLAY_WINDOW ? 0n : (window.seen << BigInt(shift)) & ALL;
    window.high = sequence;
  }
  window.seen |= 1n << BigInt(window.high - sequence);
}
