/**
 * Small-cell suppression for analysts' aggregates: a row (a cell of the cross-tabulation) counting fewer than k
 * people keeps its labels but every measure is replaced by "suppressed", so a small group at one site cannot single
 * a patient out. k = 11 by default: the CMS cell-size suppression policy (no cell of 1 to 10 is shown), also used by
 * many public-health publications.
 *
 * The cell's size is the first count column the row has, in order of how closely it counts people: patients, then
 * devices (one device monitors one patient at a time), then observations (readings, inferences, events, ...). A row
 * with none of them cannot be checked, so the whole result is refused (fail closed), never shown unsuppressed.
 *
 * Labels are the row's string columns (firmware, site, band, reason code) but for times (`*_at`, `opened`,
 * `last_observed`): a first/last time of a small group can point at one person, so it is suppressed with the measures.
 */
import { VigilError } from '../runtime/errors.ts';

export const DEFAULT_MIN_CELL = 11;
export const SUPPRESSED = 'suppressed';

/** Count columns, most person-like first. */
export const CELL_SIZE_COLUMNS = [
  'patients',
  'devices',
  'claimed_devices',
  'device_days',
  'device_hours',
  'readings',
  'inferences',
  'vital_signs',
  'events',
  'dead_letters',
  'duplicates',
  'n',
] as const;

const isTime = (column: string): boolean => /_at$|^opened$|^last_observed$/.test(column);
/** A label: text that is not a number in disguise (a server may send 64-bit counts as strings). */
const isLabel = (column: string, value: unknown): boolean =>
  typeof value === 'string' &&
  !/^-?\d+(\.\d+)?$/.test(value) &&
  !isTime(column) &&
  !(CELL_SIZE_COLUMNS as readonly string[]).includes(column);

export interface SuppressionResult {
  readonly rows: Record<string, unknown>[];
  /** How many rows were suppressed. */
  readonly suppressed: number;
  /** The column the cell size was read from; null when there were no rows. */
  readonly cellColumn: string | null;
}

/**
 * Suppresses every row whose cell size is below `k`.
 *
 * @example
 * const { rows, suppressed } = suppressSmallCells(result, 11);
 */
export function suppressSmallCells(rows: readonly Record<string, unknown>[], k = DEFAULT_MIN_CELL): SuppressionResult {
  if (!Number.isInteger(k) || k < 1) throw new RangeError('k is a whole number of at least 1');
  if (rows.length === 0) return { rows: [], suppressed: 0, cellColumn: null };
  const columns = Object.keys(rows[0]!);
  const cellColumn = CELL_SIZE_COLUMNS.find((c) => columns.includes(c));
  if (!cellColumn) {
    throw new VigilError(
      'CONFIG_INVALID',
      `the result has no count column small-cell suppression can use (one of ${CELL_SIZE_COLUMNS.join(', ')}): refused`,
    );
  }
  let suppressed = 0;
  const out = rows.map((row) => {
    const size = Number(row[cellColumn]);
    if (Number.isFinite(size) && size >= k) return { ...row };
    suppressed++;
    const masked: Record<string, unknown> = {};
    for (const [column, value] of Object.entries(row)) {
      masked[column] = isLabel(column, value) || value === null ? value : SUPPRESSED;
    }
    return masked;
  });
  return { rows: out, suppressed, cellColumn };
}
