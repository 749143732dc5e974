/**
 * A live model directory: a ModelRegistry kept current by following the model-rollouts control log, and the
 * `ModelRollouts` view operators read (runtime/models.ts). A worker opens one at start, waits for `caughtUp` before
 * scoring, and keeps it open: every later rollout, promotion or rollback is applied as it arrives, and the next batch
 * reads the new routing table (its revision moved). A record that is not a valid change, or that breaks the registry's
 * rules, is skipped and counted, never thrown: one bad record must not stop every worker.
 */
import type { ControlLog } from '../identity/types.ts';
import type { ModelRollouts } from '../runtime/models.ts';
import { ModelRegistry } from './registry.ts';
import type { ModelChange } from './types.ts';

export interface OpenModelDirectory {
  readonly registry: ModelRegistry;
  /** The routing table in force, for operators: `current()` is a cached snapshot until the next applied change. */
  readonly rollouts: ModelRollouts;
  /** Resolves once every change on the log when it was opened has been applied. */
  readonly caughtUp: Promise<void>;
  /** Records skipped: not valid changes (malformed, unknown kind) or refused by the registry's rules. */
  invalidRecords(): number;
  /** Of those, the valid records the registry refused (e.g. two operators racing, the second's change now breaks a rule). */
  refusedRecords(): number;
  close(): Promise<void>;
}

/**
 * Follows `log` into a registry (a new one by default).
 *
 * @example
 * const directory = await openModelDirectory(new KafkaControlLog({ brokers, topic: TOPICS.modelRollouts, parse: parseModelChange }));
 * await directory.caughtUp;
 * const context = { ...base, rollouts: directory.rollouts };
 */
export async function openModelDirectory(
  log: ControlLog<ModelChange>,
  registry: ModelRegistry = new ModelRegistry(),
): Promise<OpenModelDirectory> {
  let invalid = 0;
  let refused = 0;
  const follower = await log.follow(
    (change) => {
      try {
        registry.apply(change);
      } catch {
        // A change the rules refuse (the registry is unchanged), or a listener that threw after it was applied.
        invalid++;
        refused++;
      }
    },
    {
      onInvalid: () => {
        invalid++;
      },
    },
  );
  return {
    registry,
    rollouts: { current: () => registry.routingTable() },
    caughtUp: follower.caughtUp,
    invalidRecords: () => invalid,
    refusedRecords: () => refused,
    close: () => follower.close(),
  };
}

/**
 * The registry as the log holds it now: every change appended before this call, applied; the follower is closed.
 *
 * @example
 * const registry = await readModelRegistry(log);
 * registry.history('deterioration');
 */
export async function readModelRegistry(log: ControlLog<ModelChange>): Promise<ModelRegistry> {
  const directory = await openModelDirectory(log);
  try {
    await directory.caughtUp;
    return directory.registry;
  } finally {
    await directory.close();
  }
}
