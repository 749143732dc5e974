/**
 * `vigil models report <name>`: the model report an ML team reads instead of tables — an HTML page (self-contained:
 * inline CSS and SVG, nothing fetched) and one PNG per chart, written to a folder:
 *
 *   vigil models report <name> [--out DIR] [--data-dir DIR | --server] [--control-dir DIR] [--now ISO] [--json]
 *
 * Figures come from the read store (`npm start`'s embedded store unless `--data-dir` names another, or the server at
 * CLICKHOUSE_URL with `--server`; never migrated or written) and the model registry folded from the model-rollouts
 * control log (Kafka `TOPICS.modelRollouts`, or with `--control-dir DIR` the file `DIR/model-rollouts.jsonl`).
 * `--json` prints one line `{"model","html","pngs":[{"id","path","width","height"}],"notes":[...]}`.
 */
import type { Command } from 'commander';
import { DEFAULT_EMBEDDED_DIR } from '../../adapters/clickhouse/index.ts';
import { readModelRegistry } from '../../governance/directory.ts';
import { loadReportData } from '../../governance/report/data.ts';
import { writeReport } from '../../governance/report/index.ts';
import { TOPICS } from '../../runtime/endpoints.ts';
import { VigilError } from '../../runtime/errors.ts';
import { openReadStore } from '../store.ts';
import { MODEL_ROLLOUTS_FILE, modelRolloutsLog } from './models.ts';

interface ReportOptions {
  readonly out?: string;
  readonly server?: boolean;
  readonly dataDir?: string;
  readonly controlDir?: string;
  readonly now?: string;
  readonly json?: boolean;
}

/** The report's folder when `--out` is not given. */
export function defaultReportDir(model: string): string {
  return `reports/models/${model}`;
}

/**
 * Adds `report` to the `models` command (cli/commands/models.ts registerModels).
 *
 * @example
 * registerModelsReport(registerModels(program));
 */
export function registerModelsReport(models: Command): void {
  models
    .command('report')
    .description('Write the model report: an HTML page and one PNG per chart (reliability, scores, drift, rollouts)')
    .argument('<name>', 'model name')
    .option('--out <dir>', 'folder for index.html and the PNGs (default reports/models/<name>)')
    .option('--server', 'read the ClickHouse server at CLICKHOUSE_URL instead of the embedded store')
    .option('--data-dir <dir>', 'embedded store directory', DEFAULT_EMBEDDED_DIR)
    .option('--control-dir <dir>', `use the file log <dir>/${MODEL_ROLLOUTS_FILE} instead of Kafka (embedded mode)`)
    .option('--now <iso>', "close outcome windows as of this instant (default: the data's latest time)")
    .option('--json', 'print one JSON line {"model","html","pngs","notes"}')
    .action(async (name: string, options: ReportOptions) => {
      const now = options.now === undefined ? undefined : Date.parse(options.now);
      if (now !== undefined && !Number.isFinite(now)) {
        throw new VigilError('CONFIG_INVALID', `--now ${options.now}: expected an ISO 8601 instant`);
      }
      const log = modelRolloutsLog(options.controlDir ? { controlDir: options.controlDir } : {});
      const controlLog = options.controlDir
        ? `file: ${options.controlDir}/${MODEL_ROLLOUTS_FILE}`
        : `Kafka topic ${TOPICS.modelRollouts}`;
      let registry: Awaited<ReturnType<typeof readModelRegistry>>;
      try {
        registry = await readModelRegistry(log);
      } finally {
        await log.close();
      }
      const store = openReadStore(options);
      try {
        const data = await loadReportData(store, registry, {
          model: name,
          controlLog,
          generatedAt: Date.now(),
          ...(now === undefined ? {} : { now }),
        });
        if (data.versions.length === 0) {
          throw new VigilError(
            'CONFIG_INVALID',
            `no model '${name}': neither the registry (${controlLog}) nor the store (${store.location}) knows it`,
          );
        }
        const written = await writeReport(data, options.out ?? defaultReportDir(name));
        if (options.json) {
          process.stdout.write(
            `${JSON.stringify({ model: name, html: written.html, pngs: written.pngs, notes: data.notes })}\n`,
          );
        } else {
          process.stdout.write(`${written.html}\n`);
          for (const png of written.pngs) process.stdout.write(`${png.path}\n`);
          for (const note of data.notes) process.stdout.write(`note: ${note}\n`);
        }
      } finally {
        await store.close();
      }
    });
}
