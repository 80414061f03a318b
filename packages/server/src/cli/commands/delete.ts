import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerDeleteCommand(program: Command): void {
  program
    .command('delete')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark delete is not implemented yet');
    });
}
