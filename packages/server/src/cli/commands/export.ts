import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerExportCommand(program: Command): void {
  program
    .command('export')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark export is not implemented yet');
    });
}
