/**
 * Features from a manifest: a model's `inputs` (runtime/models.ts ModelInput) compiled ONCE, when a version loads,
 * into flat arrays the hot path walks with plain property reads, so any model whose manifest maps its inputs to
 * envelope fields can be scored without code of its own.
 *
 * An input names `<payload branch>.<field>` (e.g. `vital_signs.spo2`: the field of the payload record that
 * event_type carries) or `envelope.<field>` (a top-level envelope field). Booleans and enum symbols become numbers
 * through the input's `encode` map ("true"/"false" for booleans). A value outside the input's [min, max] (or not a
 * finite number, or a symbol `encode` does not list) means the model does not score the record; a missing value
 * (null, or an event without that payload branch) likewise, told apart so the caller can flag it.
 */
import { VigilError } from '../../runtime/errors.ts';
import type { ModelInput } from '../../runtime/models.ts';
import { type Envelope, PAYLOAD_RECORD } from '../../schemas/types.ts';

/** What reading one record's inputs found. */
export const EXTRACTED = 0;
/** An input is null or absent (e.g. a vital-signs parameter not measured, or another event type). */
export const MISSING = 1;
/** An input is outside its allowed range, not finite, or a symbol the manifest does not encode. */
export const OUT_OF_RANGE = 2;
export type ExtractStatus = typeof EXTRACTED | typeof MISSING | typeof OUT_OF_RANGE;

const ENVELOPE_BRANCH = 'envelope';

/** The compiled inputs of one model version. */
export class FeatureExtractor {
  readonly width: number;
  readonly names: readonly string[];
  /** Per input: the payload record's Avro full name, or null for an envelope field. */
  readonly #branches: (string | null)[];
  readonly #fields: string[];
  readonly #min: Float64Array;
  readonly #max: Float64Array;
  readonly #encode: (ReadonlyMap<string, number> | null)[];

  /** Throws VigilError CONFIG_INVALID, naming the input, when a field path is not one score can read. */
  constructor(inputs: readonly ModelInput[], where: string) {
    if (!Array.isArray(inputs) || inputs.length === 0) {
      throw new VigilError(
        'CONFIG_INVALID',
        `${where}: the manifest lists no inputs (manifest format 2 maps every input to an envelope field)`,
      );
    }
    const payloadBranches = PAYLOAD_RECORD as Readonly<Record<string, string>>;
    this.width = inputs.length;
    this.names = Object.freeze(inputs.map((i) => i.name));
    this.#branches = [];
    this.#fields = [];
    this.#min = new Float64Array(inputs.length);
    this.#max = new Float64Array(inputs.length);
    this.#encode = [];
    inputs.forEach((input, k) => {
      const dot = input.field.indexOf('.');
      const branch = dot > 0 ? input.field.slice(0, dot) : '';
      const field = dot > 0 ? input.field.slice(dot + 1) : '';
      if (
        field === '' ||
        field.includes('.') ||
        (branch !== ENVELOPE_BRANCH && !Object.hasOwn(payloadBranches, branch))
      ) {
        throw new VigilError(
          'CONFIG_INVALID',
          `${where}: input ${input.name} reads "${input.field}": expected envelope.<field> or <payload>.<field> ` +
            `with <payload> one of ${Object.keys(payloadBranches).join(', ')}`,
        );
      }
      if (!(input.min <= input.max)) {
        throw new VigilError('CONFIG_INVALID', `${where}: input ${input.name} has min above max`);
      }
      this.#branches.push(branch === ENVELOPE_BRANCH ? null : payloadBranches[branch]!);
      this.#fields.push(field);
      this.#min[k] = input.min;
      this.#max[k] = input.max;
      this.#encode.push(input.encode ? new Map(Object.entries(input.encode)) : null);
    });
  }

  /**
   * Reads one record's inputs into `row` (float32, what the model is fed) and `values` (the same values as doubles,
   * what the inference records), both at `at`. On anything but EXTRACTED the slots written are garbage: the caller
   * does not use the row.
   */
  extract(envelope: Envelope, row: Float32Array, values: Float64Array, at: number): ExtractStatus {
    const payload = envelope.payload as unknown as Readonly<
      Record<string, Readonly<Record<string, unknown>> | undefined>
    >;
    const top = envelope as unknown as Readonly<Record<string, unknown>>;
    const width = this.width;
    for (let k = 0; k < width; k++) {
      const branch = this.#branches[k]!;
      let raw: unknown;
      if (branch === null) raw = top[this.#fields[k]!];
      else {
        const record = payload[branch];
        if (record === undefined || record === null) return MISSING;
        raw = record[this.#fields[k]!];
      }
      if (raw === null || raw === undefined) return MISSING;
      let value: number;
      if (typeof raw === 'number') value = raw;
      else {
        const encode = this.#encode[k]!;
        const encoded = encode === null ? undefined : encode.get(typeof raw === 'string' ? raw : String(raw));
        if (encoded === undefined) return OUT_OF_RANGE;
        value = encoded;
      }
      // NaN fails both comparisons: a non-finite value is out of range.
      if (!(value >= this.#min[k]! && value <= this.#max[k]!)) return OUT_OF_RANGE;
      row[at + k] = value;
      values[at + k] = value;
    }
    return EXTRACTED;
  }

  /** A row inside every input's range (each range's midpoint): what the load-time check feeds a model. */
  midpoints(): Float32Array {
    const row = new Float32Array(this.width);
    for (let k = 0; k < this.width; k++) row[k] = (this.#min[k]! + this.#max[k]!) / 2;
    return row;
  }
}
