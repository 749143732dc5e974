/**
 * Decode: Confluent-framed Avro envelopes -> records, per micro-batch (run: `vigil bench micro --only decode`).
 * - `framed decoder`: adapters/avro FramedDecoder.decodeBatch (header check, cached writer/resolver, avsc decode);
 * - `source batch`: runtime/source decodeBatch, what the worker runs per partition batch: the decoder plus each
 *   record's origin (sha256 of its bytes, position, headers).
 * Input: fleet simulator records (1% malformed, of which 40% raw-byte faults).
 */
import { decodeBatch } from '../../runtime/source.ts';
import { measure, report, slice, stageInputs } from './lib.ts';

const BATCH = 2000;
const inputs = await stageInputs(40_000);
const values = inputs.raw.map((r) => r.value);
report(
  await measure('decode', 'framed decoder (avsc, registry ids cached)', BATCH, (i) =>
    inputs.decoder.decodeBatch(slice(values, BATCH, i)),
  ),
);
report(
  await measure('decode', 'source batch (decoder + origin + sha256)', BATCH, (i) =>
    decodeBatch(slice(inputs.raw, BATCH, i), inputs.decoder, Date.now()),
  ),
);
