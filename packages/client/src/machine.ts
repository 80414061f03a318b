/**
 * The machine's facts for finishing spool records, computed once and lazily: the scrubber (with this
 * machine's home directory, user and host names), the OS facts (cached in the config directory), and
 * container / WSL detection. Loaded by the sender and by `flush()`, never on a CLI's exit path.
 */
import { nodeProbe } from './_node-io.js';
import { detectContainer, detectWsl } from './context/index.js';
import { type MachineFacts, machineScrubIdentity } from './message.js';
import { cachedOsFacts } from './os-facts.js';
import type { Env } from './paths.js';
import { createScrubber, type Scrubber } from './scrub/index.js';
import type { WireMessage } from './wire.js';

export function createMachineFacts(
  configDir: string | undefined,
  env: Env,
  persistOsFacts: boolean,
): MachineFacts {
  let scrubber: Scrubber | undefined;
  let os: WireMessage['context']['os'] | undefined;
  let container: boolean | undefined;
  let wsl: 0 | 1 | 2 | undefined;
  return {
    scrubber: () => {
      scrubber ??= createScrubber(machineScrubIdentity());
      return scrubber;
    },
    os: () => {
      os ??= cachedOsFacts(configDir, persistOsFacts);
      return os;
    },
    container: () => {
      if (container === undefined)
        try {
          container = detectContainer(nodeProbe, env);
        } catch {
          container = false;
        }
      return container;
    },
    wsl: () => {
      if (wsl === undefined)
        try {
          wsl = detectWsl(nodeProbe, env);
        } catch {
          wsl = 0;
        }
      return wsl;
    },
  };
}
