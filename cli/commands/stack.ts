import type { Command } from 'commander';

// Filled in by the foundation work (issue 2).
export function registerStack(program: Command): void {
  program.command('stack').description('(being built)');
}
