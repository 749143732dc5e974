/**
 * Topics a process creates for itself (adapters/kafka/admin.ts), on the real broker. The workers of a group start
 * together and race to create the pipeline's state changelog: every one of them must get the topic's partition
 * count. (Before the wait in `ensureOwnTopic`, the loser of the race could read the new topic as having 0 partitions
 * and stop with CONFIG_INVALID, as it did in the sink drill.)
 */
import { ulid } from 'ulid';
import { afterAll, describe, expect, it } from 'vitest';
import { ensureOwnTopic } from '../../adapters/kafka/admin.ts';
import { resolveEndpoints } from '../../runtime/endpoints.ts';
import { deleteTopics } from './helpers.ts';

const brokers = resolveEndpoints().kafkaBrokers;
const created: string[] = [];

afterAll(() => deleteTopics(created));

describe('ensureOwnTopic', () => {
  it('gives every process racing to create one topic its partition count, never 0', async () => {
    for (let round = 0; round < 3; round++) {
      const name = `vigil.test.own-topic.${ulid().toLowerCase()}`;
      created.push(name);
      const counts = await Promise.all(
        Array.from({ length: 4 }, () => ensureOwnTopic(brokers, { name, partitions: 6, config: {} })),
      );
      expect(counts).toEqual([6, 6, 6, 6]);
    }
  });
});
