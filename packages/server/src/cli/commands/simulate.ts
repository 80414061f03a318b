import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerSimulateCommand(program: Command): void {
  program
    .command('simulate')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark simulate is not implemented yet');
    });
}
