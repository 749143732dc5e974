/**
 * `vigil demo` (what `npm start` runs): the vitals pipeline, embedded, over a simulated fleet of 1,000 devices with
 * injected duplicates, replays and malformed records, and one firmware whose SpO2 sensor reads low. No services.
 * Ends with a short summary; `--json` prints one final JSON line instead.
 */
import { resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Command } from 'commander';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { loadPipeline } from '../../runtime/runners/load.ts';
import { addSimulationOptions, embeddedRun } from './run.ts';

const VITALS = fileURLToPath(new URL('../../pipelines/vitals.ts', import.meta.url));

export function registerDemo(program: Command): void {
  const command = program
    .command('demo')
    .description('Run the vitals pipeline embedded over a simulated fleet (no services needed) and summarise it')
    .option('--json', 'print one final JSON line instead of the summary')
    .option('--data-dir <dir>', 'embedded ClickHouse data directory (emptied first)', DEFAULT_EMBEDDED_DIR);
  addSimulationOptions(command, { events: 100_000 });
  command.action(async (flags) => {
    const definition = await loadPipeline(VITALS);
    await embeddedRun(definition, {
      dataDir: resolve(flags.dataDir),
      append: false,
      batchSize: 2000,
      json: Boolean(flags.json),
      simulation: flags,
    });
  });
}
