import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerQueryCommand(program: Command): void {
  program
    .command('query')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark query is not implemented yet');
    });
}
