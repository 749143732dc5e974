/**
 * `vigil`: one command line for every user group. Each subcommand lives in cli/commands/<name>.ts and registers
 * itself; flags and `--json` keys an issue spells out are contracts outside checks rely on, so keep them stable.
 */
import { Command, CommanderError } from 'commander';
import { describeError, VigilError } from '../runtime/errors.ts';
import { registerAlerts } from './commands/alerts.ts';
import { registerAudit } from './commands/audit.ts';
import { registerBench } from './commands/bench.ts';
import { registerDemo } from './commands/demo.ts';
import { registerDevices } from './commands/devices.ts';
import { registerEvidence } from './commands/evidence.ts';
import { registerGateway } from './commands/gateway.ts';
import { registerModels } from './commands/models.ts';
import { registerModelsGuard } from './commands/models-guard.ts';
import { registerModelsReport } from './commands/models-report.ts';
import { registerPki } from './commands/pki.ts';
import { registerPrincipals } from './commands/principals.ts';
import { registerQuery } from './commands/query.ts';
import { registerRun } from './commands/run.ts';
import { registerSchemas } from './commands/schemas.ts';
import { registerSimulate } from './commands/simulate.ts';
import { registerSink } from './commands/sink.ts';
import { registerStack } from './commands/stack.ts';
import { registerTrace } from './commands/trace.ts';

const program = new Command()
  .name('vigil')
  .description('Trustworthy clinical evidence from medical-device telemetry')
  .showHelpAfterError()
  .exitOverride();

registerDemo(program);
registerRun(program);
registerSink(program);
registerSimulate(program);
registerQuery(program);
registerAlerts(program);
registerAudit(program);
registerPrincipals(program);
registerSchemas(program);
registerStack(program);
registerBench(program);
registerPki(program);
registerDevices(program);
registerGateway(program);
registerTrace(program);
registerEvidence(program);
const models = registerModels(program);
registerModelsReport(models);
registerModelsGuard(models);

try {
  await program.parseAsync(process.argv);
} catch (error) {
  if (error instanceof CommanderError) process.exit(error.exitCode);
  process.stderr.write(`vigil: ${describeError(error)}\n`);
  process.exit(exitCodeOf(error));
}

/** 2: fix the configuration or the command line; 3: a read refused for who you are (no or bad credential, or a role
 * or sites that do not allow it: see the principals subsection of the README); 1: anything else. */
function exitCodeOf(error: unknown): number {
  if (!(error instanceof VigilError)) return 1;
  if (error.code === 'CONFIG_INVALID') return 2;
  if (error.code === 'UNAUTHENTICATED' || error.code === 'ACCESS_DENIED') return 3;
  return 1;
}
