/** Argument checks both state backends share: a failure is a programming error, never a bad record. */
import { VigilError } from '../errors.ts';

export function assertWindow(window: number): void {
  if (!Number.isSafeInteger(window) || window < 0) {
    throw new VigilError('INTERNAL', `state: replay window must be a non-negative integer`);
  }
}

export function assertSequence(sequence: number): void {
  if (!Number.isSafeInteger(sequence)) {
    throw new VigilError('INTERNAL', 'state: a sequence number must be a safe integer (validate guarantees it)');
  }
}
