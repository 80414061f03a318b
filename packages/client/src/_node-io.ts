/** The real file probe and command runner handed to the pure detectors in `context/`. */
import type * as ChildProcess from 'node:child_process';
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type { CommandRunner, FileProbe } from './context/index.js';

export const nodeProbe: FileProbe = {
  exists(file) {
    try {
      fs.accessSync(file);
      return true;
    } catch {
      return false;
    }
  },
  read(file) {
    try {
      return fs.readFileSync(file, 'utf8');
    } catch {
      return undefined;
    }
  },
};

const require = createRequire(import.meta.url);

/** Only used lazily, off the command's path (OS facts on macOS and Windows). */
export const nodeRunner: CommandRunner = (file, args) => {
  try {
    const { execFileSync } = require('node:child_process') as typeof ChildProcess;
    return execFileSync(file, [...args], {
      encoding: 'utf8',
      timeout: 1500,
      stdio: ['ignore', 'pipe', 'ignore'],
      windowsHide: true,
    });
  } catch {
    return undefined;
  }
};
