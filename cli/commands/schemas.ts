import type { Command } from 'commander';

// Filled in by the foundation work (issue 2).
export function registerSchemas(program: Command): void {
  program.command('schemas').description('(being built)');
}
