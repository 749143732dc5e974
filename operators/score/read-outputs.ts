/**
 * How score reads a model's outputs, per the manifest's `output.kind` (runtime/models.ts ModelOutput):
 * - `news2`: the chart network's `score` [N,1], `subscores` [N,inputs] and `band` [N,1] (0..3);
 * - `probability`: a probability [N,1] in [0,1] (the score), its risk band from the manifest's thresholds, and the
 *   optional per-input contributions [N,inputs] (the inference's subscores; [] when the manifest names none).
 * A reader checks the tensors' types and shapes once per model call (a wrong model fails loudly, CONFIG_INVALID at
 * load time); per row it returns null for an output it cannot trust (not finite, a band that is not 0..3, a
 * probability outside [0,1]), which the operator turns into a dead letter or a skipped shadow.
 */

import { riskBandOf } from '../../governance/manifest.ts';
import { VigilError } from '../../runtime/errors.ts';
import type { ModelOutput, TensorData } from '../../runtime/models.ts';
import type { Inference } from '../../schemas/types.ts';
import { RISK_BANDS } from './news2-reference.ts';

export type RiskBand = Inference['risk_band'];

/** The outputs of one model call, as checked float32 arrays (`subscores` empty when the model has none). */
export interface CheckedOutputs {
  readonly score: Float32Array;
  readonly subscores: Float32Array;
  readonly band: Float32Array | null;
}

const NO_SUBSCORES = new Float32Array(0);

function float32(
  out: Readonly<Record<string, TensorData>>,
  name: string,
  length: number,
  shape: string,
  where: string,
): Float32Array {
  const data = out[name]?.data;
  if (!(data instanceof Float32Array && data.length === length)) {
    throw new VigilError(
      'CONFIG_INVALID',
      `${where} must return a float32 output ${name} ${shape}; it returned ${Object.keys(out).join(', ') || 'nothing'}`,
    );
  }
  return data;
}

export class OutputReader {
  readonly #output: ModelOutput;
  readonly #width: number;
  readonly #where: string;

  constructor(output: ModelOutput, width: number, where: string) {
    if (output?.kind !== 'news2' && output?.kind !== 'probability') {
      throw new VigilError(
        'CONFIG_INVALID',
        `${where}: the manifest's output kind must be "news2" or "probability" (manifest format 2)`,
      );
    }
    this.#output = output;
    this.#width = width;
    this.#where = where;
  }

  get kind(): ModelOutput['kind'] {
    return this.#output.kind;
  }

  /** Checks one call's outputs for `rows` rows; throws CONFIG_INVALID when a tensor is missing or misshapen. */
  check(out: Readonly<Record<string, TensorData>>, rows: number): CheckedOutputs {
    const o = this.#output;
    const w = this.#width;
    const where = this.#where;
    if (o.kind === 'news2') {
      return {
        score: float32(out, o.score_tensor, rows, '[N,1]', where),
        subscores: float32(out, o.subscores_tensor, rows * w, `[N,${w}]`, where),
        band: float32(out, o.band_tensor, rows, '[N,1]', where),
      };
    }
    return {
      score: float32(out, o.score_tensor, rows, '[N,1]', where),
      subscores:
        o.contributions_tensor === null
          ? NO_SUBSCORES
          : float32(out, o.contributions_tensor, rows * w, `[N,${w}]`, where),
      band: null,
    };
  }

  /** The score of row `r`, or NaN when it cannot be trusted. */
  score(o: CheckedOutputs, r: number): number {
    const s = o.score[r]!;
    if (!Number.isFinite(s)) return Number.NaN;
    if (this.#output.kind === 'probability' && !(s >= 0 && s <= 1)) return Number.NaN;
    return s;
  }

  /** The risk band of row `r` whose score is `score`; null when the model's band is not one of 0..3. */
  band(o: CheckedOutputs, r: number, score: number): RiskBand | null {
    const output = this.#output;
    if (output.kind === 'probability') return riskBandOf(score, output.thresholds);
    const b = o.band![r]!;
    return b === 0 || b === 1 || b === 2 || b === 3 ? RISK_BANDS[b] : null;
  }

  /** The subscores of row `r` (a fresh array: it rides on the inference), or null when one is not finite. */
  subscores(o: CheckedOutputs, r: number): number[] | null {
    const w = this.#width;
    if (o.subscores.length === 0) return [];
    const at = r * w;
    const subscores: number[] = new Array(w);
    for (let k = 0; k < w; k++) {
      const s = o.subscores[at + k]!;
      if (!Number.isFinite(s)) return null;
      subscores[k] = s;
    }
    return subscores;
  }
}
