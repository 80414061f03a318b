/**
 * The environment class of a run, from environment variables and TTYs only (cheap enough to compute
 * when the client is created). Precedence, first match wins:
 *
 *   test > ci > agent > dev > container > interactive > script
 *
 * so a test suite running in CI counts as `test`, an agent driving a CI job counts as `ci`, and only
 * a person at a terminal of a released build counts as `interactive`.
 */
import { type EnvClass, plainAgentName } from '../wire.js';

type Env = Readonly<Record<string, string | undefined>>;

/** `CI=false`, `CI=0`, `CI=no`, `CI=off` and empty mean "not CI", whatever else is set. */
function isFalsy(value: string | undefined): boolean {
  return value !== undefined && /^(?:|0|false|no|off)$/i.test(value.trim());
}

function isSet(value: string | undefined): boolean {
  return value !== undefined && value !== '' && !isFalsy(value);
}

/** CI services, most specific first; each is recognised by a variable only that service sets. */
const CI_VENDORS: readonly (readonly [string, (env: Env) => boolean])[] = [
  ['github-actions', (env) => env.GITHUB_ACTIONS === 'true'],
  ['gitlab', (env) => isSet(env.GITLAB_CI)],
  ['circleci', (env) => isSet(env.CIRCLECI)],
  ['travis', (env) => isSet(env.TRAVIS)],
  ['buildkite', (env) => isSet(env.BUILDKITE)],
  ['azure-pipelines', (env) => isSet(env.TF_BUILD)],
  ['bitbucket', (env) => isSet(env.BITBUCKET_BUILD_NUMBER) || isSet(env.BITBUCKET_COMMIT)],
  ['teamcity', (env) => isSet(env.TEAMCITY_VERSION)],
  ['drone', (env) => isSet(env.DRONE)],
  ['aws-codebuild', (env) => isSet(env.CODEBUILD_BUILD_ARN) || isSet(env.CODEBUILD_BUILD_ID)],
  ['appveyor', (env) => isSet(env.APPVEYOR)],
  ['semaphore', (env) => isSet(env.SEMAPHORE)],
  ['google-cloud-build', (env) => isSet(env.BUILDER_OUTPUT)],
  ['netlify', (env) => isSet(env.NETLIFY) && !isSet(env.NETLIFY_LOCAL)],
  ['vercel', (env) => isSet(env.VERCEL) || isSet(env.NOW_BUILDER)],
  ['woodpecker', (env) => env.CI === 'woodpecker' || env.CI_SYSTEM_NAME === 'woodpecker'],
  ['harness', (env) => isSet(env.HARNESS_BUILD_ID)],
  ['jenkins', (env) => isSet(env.JENKINS_URL) || isSet(env.JENKINS_HOME)],
];

export function detectCiVendor(env: Env): string | null {
  if (isFalsy(env.CI)) return null;
  for (const [name, matches] of CI_VENDORS) if (matches(env)) return name;
  if (isSet(env.CI) || isSet(env.CONTINUOUS_INTEGRATION)) return 'generic';
  return null;
}

const SCRIPT_RUNNERS: readonly (readonly [string, RegExp])[] = [
  ['vitest', /\bvitest\b/],
  ['jest', /\bjest\b/],
  ['mocha', /\bmocha\b/],
  ['ava', /\bava\b/],
  ['tap', /\b(?:tap|tape)\b/],
  ['playwright', /\bplaywright\s+test\b/],
  ['node:test', /\bnode\b[^|;&]*\s--test\b/],
];

export function detectTestRunner(env: Env): string | null {
  if (isSet(env.VITEST) || isSet(env.VITEST_WORKER_ID) || isSet(env.VITEST_POOL_ID)) return 'vitest';
  if (isSet(env.JEST_WORKER_ID)) return 'jest';
  if (isSet(env.NODE_TEST_CONTEXT)) return 'node:test';
  // Worker ids start at 0, so presence is what counts.
  if (env.MOCHA_WORKER_ID !== undefined) return 'mocha';
  if (isSet(env.AVA_PATH)) return 'ava';
  if (isSet(env.TAP) || isSet(env.TAP_CHILD_ID) || isSet(env.TAP_JOBID)) return 'tap';
  if (env.TEST_WORKER_INDEX !== undefined && env.TEST_PARALLEL_INDEX !== undefined) return 'playwright';
  const script = env.npm_lifecycle_script ?? '';
  if (env.npm_lifecycle_event === 'test' || /^test(?::|$)/.test(env.npm_lifecycle_event ?? '')) {
    for (const [name, pattern] of SCRIPT_RUNNERS) if (pattern.test(script)) return name;
    return 'npm-test';
  }
  if (env.NODE_ENV === 'test') return 'node-env-test';
  return null;
}

/** Agents identify themselves with variables their shells set; a name given in `AI_AGENT` is kept only if it is a plain tool name. */
const AGENTS: readonly (readonly [string, (env: Env, tty: boolean) => boolean])[] = [
  ['claude-code', (env) => isSet(env.CLAUDECODE) || isSet(env.CLAUDE_CODE)],
  ['codex', (env) => isSet(env.CODEX_SANDBOX) || isSet(env.CODEX_THREAD_ID) || isSet(env.CODEX_CI)],
  ['gemini-cli', (env) => isSet(env.GEMINI_CLI)],
  ['cursor', (env, tty) => isSet(env.CURSOR_AGENT) || (isSet(env.CURSOR_TRACE_ID) && !tty)],
  ['amp', (env) => isSet(env.AMP_CURRENT_THREAD_ID) || env.AGENT === 'amp'],
  ['opencode', (env) => isSet(env.OPENCODE) || isSet(env.OPENCODE_BIN_PATH) || isSet(env.OPENCODE_SERVER)],
  ['auggie', (env) => isSet(env.AUGMENT_AGENT)],
  ['junie', (env) => isSet(env.JUNIE_DATA) || isSet(env.JUNIE_SHIM_PATH)],
  ['goose', (env) => isSet(env.GOOSE_PROVIDER) && isSet(env.GOOSE_TERMINAL)],
  ['devin', (env) => /devin/i.test(env.EDITOR ?? '')],
  ['replit', (env, tty) => isSet(env.REPL_ID) && (env.REPLIT_MODE === 'assistant' || !tty)],
  ['aider', (env, tty) => isSet(env.AIDER_API_KEY) && !tty],
  ['windsurf', (env, tty) => isSet(env.CODEIUM_EDITOR_APP_ROOT) && !tty],
  ['kiro', (env, tty) => /kiro/i.test(env.TERM_PROGRAM ?? '') && !tty],
  ['zed', (env, tty) => env.TERM_PROGRAM === 'zed' && env.PAGER === 'cat' && !tty],
  [
    'github-copilot',
    (env, tty) =>
      isSet(env.COPILOT_AGENT_ID) || (env.TERM_PROGRAM === 'vscode' && env.GIT_PAGER === 'cat' && !tty),
  ],
];

export function detectAgent(env: Env, interactiveTerminal: boolean): string | null {
  const declared = env.AI_AGENT?.trim();
  if (declared) return plainAgentName(declared);
  for (const [name, matches] of AGENTS) if (matches(env, interactiveTerminal)) return name;
  return null;
}

/** `0.0.0`, `-dev`, `-devel`, `-dirty` (also `+dirty`, `.dev3`) mark a build of the tool's own source. */
export function isDevBuild(version: string): boolean {
  const v = version.trim().replace(/^v/i, '');
  return v === '' || /^0\.0\.0(?:$|[-+])/.test(v) || /[-+.](?:dev|devel|dirty)(?:$|[-+.\d])/i.test(v);
}

export function classify(signals: {
  readonly testRunner: string | null;
  readonly ciVendor: string | null;
  readonly agent: string | null;
  readonly devBuild: boolean;
  readonly container: boolean;
  readonly interactive: boolean;
}): EnvClass {
  if (signals.testRunner) return 'test';
  if (signals.ciVendor) return 'ci';
  if (signals.agent) return 'agent';
  if (signals.devBuild) return 'dev';
  if (signals.container) return 'container';
  if (signals.interactive) return 'interactive';
  return 'script';
}
