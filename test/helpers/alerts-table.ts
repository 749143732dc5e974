/**
 * Kept for tests written against the proposed table: `clinical_alerts` is now a reviewed migration
 * (infra/clickhouse/migrations/0006_clinical_alerts.sql), and this is its statement, read from that file, so there is
 * one definition. New tests: `store.migrate()` creates it with every other table.
 */
import { readFileSync } from 'node:fs';

const MIGRATION = new URL('../../infra/clickhouse/migrations/0006_clinical_alerts.sql', import.meta.url);

/** The migration's CREATE TABLE (IF NOT EXISTS: harmless on a store the migrations were applied to). */
export const ALERT_TABLE_DDL = readFileSync(MIGRATION, 'utf8')
  .split('\n')
  .filter((line) => !line.startsWith('--'))
  .join('\n')
  .trim()
  .replace(/;$/, '');
