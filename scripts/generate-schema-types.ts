/**
 * Generates TypeScript types from the newest version of every subject in schemas/avro/subjects.json, so the types are
 * never written twice by hand. `--check` fails (exit 1) when the checked-in files differ from what would be generated:
 * CI runs it (and `vigil schemas check` runs the same check), so a schema change without regenerated types cannot land.
 * The logic lives in adapters/avro/typegen.ts.
 */

import { loadSchemaRepo } from '../adapters/avro/schemas.ts';
import { generateSchemaTypes } from '../adapters/avro/typegen.ts';

const check = process.argv.includes('--check');
const report = await generateSchemaTypes(loadSchemaRepo(), { check });
for (const file of report.changed) {
  if (check) console.error(`stale: ${file} (run npm run schemas:types)`);
  else console.log(`wrote ${file}`);
}
if (check && report.changed.length > 0) process.exit(1);
