import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerQuarantineCommands(program: Command): void {
  program
    .command('quarantine')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark quarantine is not implemented yet');
    });
}
