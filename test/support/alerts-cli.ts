/**
 * `vigil alerts ...` for the integration tests: the real CLI (bin/vigil.js) once cli/main.ts registers the command;
 * until then this file stands in for it, registering cli/commands/alerts.ts on a commander program exactly as
 * cli/main.ts does for the other commands (same flags, same code path), and run as its own process:
 *
 *   node --import tsx test/support/alerts-cli.ts alerts ack <alert-id> --principal P --data-dir DIR --json
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { type Child, REPO, spawnNode, VIGIL } from './process.ts';

/** Whether bin/vigil.js has the `alerts` command (cli/main.ts registers it). */
export function cliHasAlerts(): boolean {
  return readFileSync(join(REPO, 'cli', 'main.ts'), 'utf8').includes('registerAlerts(');
}

/** Runs `vigil <args>` (args start with `alerts`) with extra environment. */
export function spawnAlertsCli(args: readonly string[], env: Record<string, string>): Child {
  if (cliHasAlerts()) return spawnNode(VIGIL, args, env);
  return spawnNode(join(REPO, 'test', 'support', 'alerts-cli.ts'), args, env, ['--import', 'tsx']);
}

async function main(): Promise<void> {
  const { Command } = await import('commander');
  const { registerAlerts } = await import('../../cli/commands/alerts.ts');
  const program = new Command().name('vigil').exitOverride();
  registerAlerts(program);
  await program.parseAsync(process.argv);
}

if (process.argv[1]?.endsWith('alerts-cli.ts')) {
  main().catch((error: unknown) => {
    process.stderr.write(`vigil: ${error instanceof Error ? error.message : String(error)}\n`);
    process.exit(1);
  });
}
