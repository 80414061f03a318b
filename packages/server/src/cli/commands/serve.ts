import type { Command } from 'commander';

/** Placeholder until its issue lands: the command exists so the program's shape is fixed. */
export function registerServeCommand(program: Command): void {
  program
    .command('serve')
    .description('(not yet implemented)')
    .action(() => {
      throw new Error('telemark serve is not implemented yet');
    });
}
