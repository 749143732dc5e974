/**
 * The record types the vitals operators hand each other. Each stage adds to the record, never mutates what an
 * earlier stage produced: the envelope stays exactly as decoded, and derived facts sit beside it.
 */
import type { Envelope, Inference } from '../schemas/types.ts';

/**
 * Conditions kept visible on the normalised record instead of being silently fixed (a fixed set: they become
 * `provenance_flags`, and analysts filter on them).
 */
export type ProvenanceFlag =
  | 'clock_skew' // observed_at somewhat after received_at: within the hard bound, beyond the tolerance
  | 'late_arrival' // observed long before received (buffered offline), within the maximum age
  | 'no_sequence' // the envelope carries no sequence number: replay protection by event_id only
  | 'news2_incomplete' // a vital-signs record without all seven NEWS2 parameters: not scored
  | 'calibration_stale'; // the device reported stale calibration in its latest status

/** An envelope that passed validation (and, after `dedupe`, is the first copy of its event). */
export interface CheckedEvent {
  readonly envelope: Envelope;
  readonly flags: readonly ProvenanceFlag[];
}

/**
 * A checked event after `score`: every inference made for it — each configured model, each version routing ran on
 * the event (live or canary, plus shadows), in model order, clinical first — or none (a model that does not apply to
 * the event, or whose inputs are missing or out of range, makes none; `news2_incomplete` says why for NEWS2).
 * Which of them is clinical (may alert) is each inference's `routing.clinical`.
 */
export interface ScoredEvent extends CheckedEvent {
  readonly inferences: readonly Inference[];
}
