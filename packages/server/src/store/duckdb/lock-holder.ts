import fs from 'node:fs';
import path from 'node:path';

/**
 * What holds a DuckDB file's lock, from the PID DuckDB names: `telemark <command>` when that process is
 * the telemark CLI (its command line, from /proc on Linux), else undefined. DuckDB only says "PID n",
 * and the file is held by a collector (`serve`, for as long as it runs) as well as by an admin command
 * (`export`, `query --data`… for as long as it takes), whose fixes differ: go through or stop the
 * collector, or wait for the command to end. Only the command's name is kept: its arguments could name
 * paths or URLs the reader of the error need not see.
 */
export function lockHolder(pid: number): string | undefined {
  let args: string[];
  try {
    args = fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
  } catch {
    // Not Linux, or the process has gone (or is another user's, hidden by hidepid).
    return undefined;
  }
  // `node …/bin/telemark export …` as installed (npm's link, run through its #! line), or
  // `node …/dist/cli/main.js serve …` (npm start, a service unit).
  const script = args.findIndex(
    (arg, i) => i > 0 && (path.basename(arg) === 'telemark' || /[\\/]cli[\\/]main\.[cm]?[jt]s$/.test(arg)),
  );
  if (script < 0) return undefined;
  const command = args.slice(script + 1).find((arg) => !arg.startsWith('-'));
  return command !== undefined && /^[a-z]+$/.test(command) ? `telemark ${command}` : undefined;
}
