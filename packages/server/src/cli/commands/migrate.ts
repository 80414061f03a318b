import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerMigrateCommand(program: Command): void {
  program
    .command('migrate')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark migrate is not implemented yet');
    });
}
