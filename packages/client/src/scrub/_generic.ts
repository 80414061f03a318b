/**
 * The scrubber's rules apart from Kubernetes names: secrets, URLs, e-mail, paths, addresses, hosts,
 * the local user, ids. Order matters and is documented in `docs/privacy.md`: secrets first (they can
 * hide inside URLs and paths), then URLs (their paths are redacted with API awareness), then names.
 */
import { isIPv6 } from 'node:net';
import {
  genericHomeLength,
  homeSegments,
  isMarker,
  type KeepName,
  scrubSegments,
  startsWithSegments,
} from './_paths.js';
import { escapeRegExp, hasBase64Run, type Rule, type TextFacts } from './_rule.js';
import {
  HOST_TLDS,
  PROSE_WORDS,
  PUBLIC_DOMAIN_SUFFIXES,
  PUBLIC_HOSTS,
  SHARED_ACCOUNT_NAMES,
  SHARED_HOST_NAMES,
  SHARED_KUBE_NAMES,
} from './_vocabulary.js';

export interface RuleIdentity {
  readonly homeDir?: string;
  readonly userName?: string;
  readonly hostName?: string;
}

/** A dot followed by a known top-level domain: the cheap guard of the host name rule. */
const TLD_INSIDE = new RegExp(`\\.(?:${[...HOST_TLDS].join('|')})(?![a-z0-9-])`, 'i');

/** A secret-ish word right before `=` or a quoted `:` value (lower case): the guards of the key/value rules. */
const SECRET_WORD_BEFORE_EQUALS =
  /(?:passw|pwd|secret|token|key|credential|session|sig|account|client|refresh|cookie)[\w.-]*\s*=/;
const SECRET_WORD_BEFORE_COLON =
  /(?:passw|pwd|secret|token|key|credential|session|sig|account|client|refresh|cookie)[\w.-]*["']?\s*:\s*["']/;
/** What the second needs in any case, starting with a literal (found fast): a `:` before a quote. */
const COLON_BEFORE_QUOTE = /:\s*["']/;

/**
 * Keys whose unquoted value after `:` is a secret: the key ends with the secret word (`password:`,
 * `refresh_token:`, `bearer token:`), unlike `key=value` where it may be anywhere in it; a colon ends
 * many words in errors that only mention one (`password_file: …`, `token_url: …`).
 */
const BARE_SECRET_KEY =
  /(?:passw(?:or)?d|pwd|secret|token|(?:api|access|private|auth|account|client|shared-?access)[_-]?key|apikey|credential|session[_-]?id|signature|cookie)s?$/i;
/** The last three letters of every key BARE_SECRET_KEY takes (lower case), singular and plural. */
const KEY_ENDINGS: ReadonlySet<string> = new Set(
  ['ord', 'swd', 'pwd', 'ret', 'ken', 'key', 'ial', '_id', '-id', 'nid', 'ure', 'kie'].flatMap((end) => [
    end,
    `${end.slice(1)}s`,
  ]),
);
/** Longer than any key BARE_SECRET_KEY ends with: only this much of a key is tested. */
const KEY_TAIL = 24;

const isKeyChar = (c: number): boolean =>
  (c >= 97 && c <= 122) || (c >= 65 && c <= 90) || (c >= 48 && c <= 57) || c === 95 || c === 45 || c === 46;

/**
 * What ends an unquoted value, as a character class body: the guard and the rule's pattern are both
 * built from it, so the guard never rules out a value the rule would take.
 */
const VALUE_END_CHARS = String.raw`\s"',;)\]}`;
const VALUE_END = new RegExp(`[${VALUE_END_CHARS}]`);
/** Characters of a value the guard reads; past them it lets the rule decide, and stays linear. */
const GUARD_VALUE_SCAN = 256;

/**
 * The guard of the unquoted `key: value` rule, exact: whether some `:` has a secret key before it and
 * a secret value after it. Almost every error has a `:` and many a `token:` or `credentials:` in an
 * error chain; a word list tried at every position, or the rule run on them, cost more than reading
 * the few colons of an error here.
 */
function hasBareSecret(text: string): boolean {
  for (let colon = text.indexOf(':'); colon !== -1; colon = text.indexOf(':', colon + 1)) {
    let end = colon;
    while (end > 0 && (text.charCodeAt(end - 1) === 32 || text.charCodeAt(end - 1) === 9)) end--;
    if (end > 0 && (text.charCodeAt(end - 1) === 34 || text.charCodeAt(end - 1) === 39)) end--;
    // Most colons are ruled out by the three letters before them alone.
    if (end < 3 || !KEY_ENDINGS.has(text.slice(end - 3, end).toLowerCase())) continue;
    let start = end;
    while (start > 0 && end - start < KEY_TAIL && isKeyChar(text.charCodeAt(start - 1))) start--;
    if (!BARE_SECRET_KEY.test(text.slice(start, end))) continue;
    let from = colon + 1;
    while (text[from] === ' ' || text[from] === '\t') from++;
    const first = text[from];
    if (first === undefined || first === '<' || first === '"' || first === "'" || VALUE_END.test(first))
      continue;
    let to = from;
    // Bounded: with many colons (`password:password:…`) an unbounded scan would be quadratic.
    while (to < text.length && to - from < GUARD_VALUE_SCAN && !VALUE_END.test(text[to]!)) to++;
    if (to < text.length && !VALUE_END.test(text[to]!)) return true;
    const raw = text.slice(from, to);
    const value = raw.replace(/[.:]+$/, '');
    if (value !== '' && isBareSecretValue(value, raw.slice(value.length) + text.slice(to))) return true;
  }
  return false;
}

/**
 * Whether the unquoted value after a secret key (`token: …`) is one. Errors also say `fetch token:
 * oauth2: …` or `refresh token: expired`, so a value followed by another `:` (Go's error chain), a
 * number of up to 3 digits (an HTTP status) and an ordinary word are prose. A lower-case word that ends
 * the line is taken for a value unless it is a known prose word: privacy before readability.
 */
const SECRET_STATES: ReadonlySet<string> = new Set([
  'expired',
  'revoked',
  'required',
  'empty',
  'none',
  'null',
  'nil',
  'undefined',
  'unset',
  'true',
  'false',
  'redacted',
  'hidden',
]);

function isBareSecretValue(value: string, after: string): boolean {
  if (isMarker(value) || after.startsWith(':') || /^\d{1,3}$/.test(value)) return false;
  if (!/^[a-z]+(?:[_-][a-z]+)*$/.test(value)) return true;
  if (PROSE_WORDS.has(value) || SECRET_STATES.has(value)) return false;
  return /^[ \t]*(?:$|[\r\n])/.test(after);
}

/** Keys whose values are secrets wherever they appear as `key=value` or `"key": "value"`. */
const SECRET_KEY =
  /(?:passw(?:or)?d|^pwd$|[_-]pwd$|secret|token|api[_-]?key|apikey|access[_-]?key|private[_-]?key|auth[_-]?key|credential|session[_-]?id|^sig$|signature|accountkey|accountname|sharedaccesskey|sharedaccesssignature|client[_-]?id|refresh|cookie)/i;

export function createSecretRules(): Rule[] {
  return [
    {
      name: 'pem-block',
      needs: '-----BEGIN',
      pattern: /-----BEGIN [A-Z0-9 ]{1,40}-----[\s\S]*?(?:-----END [A-Z0-9 ]{1,40}-----|$)/g,
      replace: '<secret>',
    },
    {
      name: 'jwt',
      needs: 'eyJ',
      pattern: /\beyJ[\w-]{5,}\.[\w-]{5,}\.[\w-]*/g,
      replace: '<token>',
    },
    {
      name: 'auth-header',
      needs: ({ lower }: TextFacts) =>
        lower.includes('bearer') || lower.includes('basic') || lower.includes('authorization'),
      pattern:
        /\b(authorization["']?\s*[:=]\s*["']?)(?:(bearer|basic|digest|negotiate|token)\s+)?[^\s"',;)]+|\b(bearer|basic)(\s+)[\w~+/.=-]{8,}/gi,
      replace: (
        _match: string,
        header: string | undefined,
        headerScheme: string | undefined,
        scheme: string | undefined,
        space: string | undefined,
      ) =>
        header !== undefined
          ? `${header}${headerScheme ? `${headerScheme} ` : ''}<token>`
          : `${scheme}${space}<token>`,
    },
    {
      name: 'vendor-token',
      // The vendors' prefixes as literals: a fast search, unlike the full pattern.
      needs:
        /AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA|gh[pousr]_|github_pat_|gl[a-z]{1,4}-|npm_|xox|AIza|ya29\.|_live_|_test_|pypi-|dckr_pat_|hf_|sk-|SG\.|shp/,
      pattern:
        /\b(?:(?:AKIA|ASIA|AGPA|AIDA|AROA|ANPA|ANVA|AIPA|ABIA|ACCA)[A-Z0-9]{16}|gh[pousr]_[A-Za-z0-9]{30,255}|github_pat_\w{20,255}|glpat-[\w-]{20,}|gl(?:dt|rt|ptt|cbt|imt|oas|soat|ffct)-[\w-]{20,}|npm_[A-Za-z0-9]{30,}|xox[abposre]-[A-Za-z0-9-]{10,}|AIza[\w-]{35}|ya29\.[\w-]{20,}|(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9]{16,}|pypi-[\w-]{16,}|dckr_pat_[\w-]{20,}|hf_[A-Za-z0-9]{30,}|sk-(?:proj-|ant-)?[\w-]{32,}|SG\.[\w-]{16,}\.[\w-]{16,}|shp(?:at|ss|ca|pa)_[a-fA-F0-9]{32})/g,
      replace: '<token>',
    },
    {
      name: 'secret-assignment',
      // The `=` first: a literal search, where the word list makes the engine try every position.
      needs: ({ lower }: TextFacts) => lower.includes('=') && SECRET_WORD_BEFORE_EQUALS.test(lower),
      // Anchored on the `=` (a literal the engine finds fast); the key is read behind it and kept.
      pattern: /(?<=(?<![\w.-])([\w.-]{1,128})\s*)=(\s*)("[^"\n]*"|'[^'\n]*'|[^\s&;,"')\]}]+)/g,
      replace: (match: string, key: string, space: string, value: string) => {
        if (!SECRET_KEY.test(key) || isMarker(value.replace(/^["']|["']$/g, ''))) return match;
        const quote = value.startsWith('"') || value.startsWith("'") ? value[0] : '';
        return `=${space}${quote}<secret>${quote}`;
      },
    },
    {
      name: 'secret-json',
      needs: ({ lower }: TextFacts) => COLON_BEFORE_QUOTE.test(lower) && SECRET_WORD_BEFORE_COLON.test(lower),
      // Anchored on the `:`; the (maybe quoted) key is read behind it and kept.
      pattern: /(?<=(?<![\w.-])(["']?)([\w.-]{1,128})(["']?)\s*):(\s*)(["'])([^"'\n]*)\5/g,
      replace: (
        match: string,
        openQuote: string,
        key: string,
        closeQuote: string,
        space: string,
        quote: string,
        value: string,
      ) =>
        openQuote === closeQuote && SECRET_KEY.test(key) && value !== '' && !isMarker(value)
          ? `:${space}${quote}<secret>${quote}`
          : match,
    },
    {
      name: 'secret-colon',
      // `password: hunter2` in logs and YAML-ish output; the `:` first, as for the `=` rule.
      needs: ({ text }: TextFacts) => hasBareSecret(text),
      // The `:` first, then the (maybe quoted) key read behind it and kept: a lookbehind first would be
      // tried at every position. Quoted values are the JSON rule's; a marker (`<secret>`) is left alone.
      pattern: new RegExp(
        String.raw`:(?<=(?<![\w.-])["']?([\w.-]{1,128})["']?[ \t]*:)([ \t]*)([^<${VALUE_END_CHARS}][^${VALUE_END_CHARS}]*)`,
        'g',
      ),
      replace: (match: string, key: string, space: string, raw: string, offset: number, text: string) => {
        if (!BARE_SECRET_KEY.test(key)) return match;
        // Sentence or error-chain punctuation right after the value is not part of it.
        const value = raw.replace(/[.:]+$/, '');
        const after = raw.slice(value.length) + text.slice(offset + match.length);
        return value !== '' && isBareSecretValue(value, after)
          ? `:${space}<secret>${raw.slice(value.length)}`
          : match;
      },
    },
    {
      name: 'secret-flag',
      needs: ({ lower }: TextFacts) =>
        /-(?:password|passwd|token|api-?key|apikey|secret|client-secret|access-token|auth-token|refresh-token|session-token)/.test(
          lower,
        ),
      pattern:
        /(?<![\w-])(--?(?:password|passwd|token|api-?key|apikey|secret|client-secret|access-token|auth-token|refresh-token|session-token)(?:=|[ \t]+))("[^"\n]*"|'[^'\n]*'|[^\s"']+)/gi,
      replace: (match: string, flag: string, value: string) =>
        isMarker(value) || value.startsWith('-') ? match : `${flag}<secret>`,
    },
  ];
}

function isLoopbackV4(address: string): boolean {
  return address.startsWith('127.') || address === '0.0.0.0';
}

/** Addresses shared by everyone (loopback, unspecified, public resolvers, the cloud metadata service). */
const SHARED_IPV4 = new Set([
  '0.0.0.0',
  '255.255.255.255',
  '8.8.8.8',
  '8.8.4.4',
  '1.1.1.1',
  '1.0.0.1',
  '9.9.9.9',
  '169.254.169.254',
]);

export function isPublicHost(host: string): boolean {
  const lower = host.toLowerCase().replace(/\.$/, '');
  if (PUBLIC_HOSTS.has(lower) || SHARED_KUBE_NAMES.has(lower)) return true;
  if (lower === 'localhost' || lower.endsWith('.localhost')) return true;
  if (lower === '[::1]' || lower === '::1' || lower === '[::]') return true;
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(lower)) return isLoopbackV4(lower) || SHARED_IPV4.has(lower);
  return PUBLIC_DOMAIN_SUFFIXES.some((suffix) => lower.endsWith(suffix));
}

// biome-ignore lint/suspicious/noExplicitAny: String.prototype.replace's replacer type
type Replacer = (match: string, ...groups: any[]) => string;

/**
 * Paths and host names end before sentence punctuation (`…/docker.sock. Is the daemon…`): the
 * replacer sees the match without it, re-matched on its own, and the punctuation is put back.
 */
function endingBeforePunctuation(pattern: RegExp, replace: Replacer): Replacer {
  const whole = new RegExp(`^(?:${pattern.source})$`, pattern.flags.replace('g', ''));
  return (match, ...groups) => {
    const end = /[.,!?]+$/.exec(match);
    if (end && end.index > 0 && !/[./\\]$/.test(match.slice(0, end.index))) {
      const inner = whole.exec(match.slice(0, end.index));
      if (inner) return (replace as (...args: unknown[]) => string)(...inner) + end[0];
    }
    return replace(match, ...groups);
  };
}

function punctuationAware(rule: Rule): Rule {
  return typeof rule.replace === 'string'
    ? rule
    : { ...rule, replace: endingBeforePunctuation(rule.pattern, rule.replace) };
}

/** Split sentence punctuation off the end of a URL, path or value. */
export function splitTrailingPunctuation(text: string): [string, string] {
  const match = /[.,:;!?)\]]+$/.exec(text);
  return match ? [text.slice(0, match.index), match[0]] : [text, ''];
}

/** `/api/...`, `/apis/...`, or a path that names namespaces: redact with the Kubernetes shape. */
function scrubUrlPath(path: string, keepName: KeepName): string {
  const segments = path.split('/');
  const kubeApi = segments[1] === 'api' || segments[1] === 'apis' || segments.includes('namespaces');
  return scrubSegments(segments, kubeApi, keepName).join('/');
}

export function createUrlRules(keepName: KeepName): Rule[] {
  return [
    {
      name: 'url',
      needs: '://',
      pattern:
        /\b([a-z][a-z0-9+.-]{1,15}):\/\/([^\s/?#"'@]*@)?(\[[0-9a-fA-F:.%\w]+\]|[^\s/?#"'<>:@[\]`\\]+)(:\d{1,5})?(\/[^\s?#"'<>`\\]*)?(\?[^\s#"'`]*)?(#[^\s"'`]*)?/gi,
      replace: (
        _match: string,
        scheme: string,
        userInfo: string | undefined,
        rawHost: string,
        port: string | undefined,
        rawPath: string | undefined,
        rawQuery: string | undefined,
        rawFragment: string | undefined,
      ) => {
        // Sentence punctuation right after a URL (`…/callback?x=1: context canceled`) is not part of it.
        let tail = '';
        let lastSeen = false;
        const cut = (piece: string | undefined) => {
          if (!piece || lastSeen) return piece;
          lastSeen = true;
          [piece, tail] = splitTrailingPunctuation(piece);
          return piece;
        };
        const fragment = cut(rawFragment);
        const query = cut(rawQuery);
        const path = cut(rawPath);
        const host = port ? rawHost : (cut(rawHost) as string);
        let out = `${scheme}://`;
        if (userInfo) out += '<credentials>@';
        out += isPublicHost(host) ? host : '<url-host>';
        if (port) out += port;
        if (path) out += scrubUrlPath(path, keepName);
        if (query) out += query.length > 1 ? '?<query>' : query;
        if (fragment) out += fragment.length > 1 ? '#<fragment>' : fragment;
        return out + tail;
      },
    },
    {
      // Git's scp-like remotes (`git@github.com:acme-bank/secret-repo.git`): the path names the
      // organisation and the project, which the e-mail rule would leave after `<email>:`.
      name: 'scp-remote',
      // Starts with a literal, so it is found fast; the rule's own pattern starts with a class.
      needs: ({ text }: TextFacts) => text.includes('@') && SCP_SHAPE.test(text),
      pattern: new RegExp(
        String.raw`(?<![\w.%+-])([\w.-]{1,64})@(${SCP_HOST}):(?=[\w~./-])([^\s"'<>,;|]*)`,
        'g',
      ),
      replace: (match: string, user: string, host: string, rawPath: string) => {
        if (NOT_A_HOST.test(host)) return match;
        const [path, tail] = splitTrailingPunctuation(rawPath);
        const segments = path.split('/');
        const tilde = segments[0] === '~';
        const scrubbed = scrubSegments(tilde ? segments.slice(1) : segments, false, () => false);
        return `${keptAccount(user)}@${isPublicHost(host) ? host : '<host>'}:${tilde ? '~/' : ''}${scrubbed.join('/')}${tail}`;
      },
    },
    {
      // `ssh alice@buildbox`: a person at a machine, with no top-level domain for the e-mail rule to see.
      name: 'ssh-target',
      needs: ({ text, lower }: TextFacts) => text.includes('@') && /ssh|scp|sftp|rsync|mosh/.test(lower),
      // From the command to its first `user@host` on the line, options between them kept.
      pattern: new RegExp(
        String.raw`\b((?:ssh|scp|sftp|rsync|mosh)\b[^\n@]{0,80}?[ \t=])([\w.-]{1,64})@(${SCP_HOST})(?![\w.@-])`,
        'gi',
      ),
      replace: (_match: string, command: string, user: string, host: string) =>
        `${command}${keptAccount(user)}@${isPublicHost(host) ? host : '<host>'}`,
    },
    {
      // Letters beyond ASCII (`jöhn.müller@acme.de`), which `\w` stops at. A Unicode pattern is slower,
      // so only text with such letters pays for it. First: the ASCII rule would
      // take `ller@acme.de` out of `müller@acme.de`.
      name: 'email',
      needs: ({ text }: TextFacts) => (text.includes('@') || text.includes('%40')) && NON_ASCII.test(text),
      pattern:
        /(?<![\p{L}\p{N}_.%+-])[\p{L}\p{N}_.%+-]{1,64}(?:@|%40)[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?(?:\.[\p{L}\p{N}](?:[\p{L}\p{N}-]{0,61}[\p{L}\p{N}])?)*\.[a-z]{2,24}(?![\p{L}\p{N}_]|:[\w~./<-])/giu,
      replace: '<email>',
    },
    {
      name: 'email',
      // Also URL-encoded (`john%40acme-bank.com`). Not followed by `:path`: that is an scp-like remote,
      // whose public host (`git@github.com:`) stays.
      needs: ({ text }: TextFacts) => text.includes('@') || text.includes('%40'),
      pattern:
        /(?<![\w.%+-])[\w.%+-]{1,64}(?:@|%40)[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*\.[a-z]{2,24}(?![\w]|:[\w~./<-])/gi,
      replace: '<email>',
    },
    {
      // `"John Smith" <john.smith@…>` and `John Smith <…>`: the display name is the person's.
      name: 'email-name',
      needs: (_facts: TextFacts, current: string) => current.includes('<<email>>'),
      pattern:
        /(?:(["'])[^"'\n<>]{1,80}\1|(?<![\p{L}\p{N}_.<>-])\p{Lu}[\p{L}'.-]{0,40}(?: \p{Lu}[\p{L}'.-]{0,40}){0,3})([ \t]*)<<email>>/gu,
      replace: (_match: string, quote: string | undefined, space: string) =>
        `${quote ? `${quote}<user>${quote}` : '<user>'}${space}<<email>>`,
    },
  ];
}

const NON_ASCII = /[^\x00-\x7f]/;
const SCP_SHAPE = /@[A-Za-z][\w.-]*:[\w~./-]/;

/** A host after `user@` in an scp-like remote or an ssh target: a name, not a version (`pkg@1.2.3`). */
const SCP_HOST = String.raw`[A-Za-z][\w-]*(?:\.[\w-]+)*`;

/**
 * What stands where an scp-like remote's host would and is none: a container image's digest
 * (`nginx@sha256:…`), a package manager's protocol (`lodash@npm:4.17.21`, `app@workspace:packages/app`).
 */
const NOT_A_HOST = /^(?:sha\d+|npm|jsr|workspace|patch|file|link|portal|exec|github|git)$/i;

/** `git@…`, `root@…`: accounts every machine has identify nobody. */
function keptAccount(user: string): string {
  const lower = user.toLowerCase();
  return lower === 'git' || SHARED_ACCOUNT_NAMES.has(lower) ? user : '<user>';
}

// A path segment. Names with spaces are common (`OneDrive - Contoso Pharma`, `Dropbox (Acme Bank)`,
// `Q3 Layoffs.xlsx`) and are what the redaction is for, so a segment takes its spaces:
// - before a separator, anything up to it that does not end in a space (`… /x` is prose then a path,
//   `x y/z` a segment with a space); words between two paths without spaces around them (`cp /a/b c/d`)
//   are taken for one path: privacy before readability;
// - as the last segment, up to four more words when the last has a file extension (`/srv/Q3
//   Layoffs.xlsx`) or ends the path where Go's errors end it (`open /srv/Acme Bank: no such file`, a
//   quote, the end of the text), else only the first word: `/x/My Project/y.txt because it is locked`
//   keeps its prose.
// A space never joins words across a verb or conjunction (`config as CORP\x`, `/x is locked`) or
// before another argument (`~x`, `./x`, `-f`): names say `Bank of America`, rarely `as` or `is`.
const WORD_CHAR = String.raw`[^\s/\\"'\x60<>|:;,(){}[\]*?]`;
const WORD = `${WORD_CHAR}+`;
const JOINING_SPACE = String.raw` (?!(?:as|to|from|into|and|or|with|than|then|when|while|because|but|is|are|was|were|has|have|had|does|did|not|no|can|cannot|could|will|would|should|must|failed)\b|[~.]|-\S)`;
/** Inside a segment with spaces: anything but separators, quotes, controls and a drive's or a list's `:`/`;`. */
const INNER = String.raw`(?:[^/\\\n\r\t"'\x60<>|*?:; ]|${JOINING_SPACE})`;
const MARK = String.raw`<[a-z*-]+>(?:\.[A-Za-z0-9]{1,8})?`;
const SEP = String.raw`(?:\\\\|\\|/)`;
const SPACED_BEFORE_SEPARATOR = String.raw`${WORD_CHAR}${INNER}{0,100}(?:${WORD_CHAR}|[)\]])(?=${SEP})`;
const SPACED_LAST = String.raw`(?:${WORD}${JOINING_SPACE}){1,4}(?:${WORD_CHAR}*?\.[A-Za-z][A-Za-z0-9]{0,7}(?=[.,;:!?]*(?:[\s"'\x60)\]}>]|$))|${WORD}(?=:\s|:?(?:$|[\r\n])|["'\x60)]))`;
// A segment without spaces before a separator is the common case: tried first, and the costlier
// spaced forms only when the word is followed by what they may contain.
export const SEGMENT = String.raw`(?:Program Files \(x86\)|${MARK}|${WORD}(?=${SEP})|(?=${WORD}[ ,(){}[\]])(?:${SPACED_BEFORE_SEPARATOR}|${SPACED_LAST})|${WORD})`;

const WINDOWS_HOME_PARENTS = new Set(['users', 'documents and settings']);
const NOT_A_WINDOWS_USER = new Set(['public', 'default', 'all users', 'default user']);

/** `Users\<name>` right under a drive: how many segments after the drive make the home directory. */
function windowsHomeLength(segments: readonly string[]): number {
  const parent = segments[0]?.toLowerCase();
  const user = segments[1];
  if (parent === undefined || !WINDOWS_HOME_PARENTS.has(parent) || !user || isMarker(user)) return 0;
  return NOT_A_WINDOWS_USER.has(user.toLowerCase()) ? 0 : 2;
}

export function createPathRules(identity: RuleIdentity): Rule[] {
  const home = homeSegments(identity.homeDir);
  const homeIsWindows = identity.homeDir !== undefined && /^[A-Za-z]:|\\/.test(identity.homeDir);
  const rules: Rule[] = [
    {
      name: 'path-unc',
      needs: '\\\\',
      pattern: new RegExp(
        // `\\?\UNC\server\share` is the long-path spelling of `\\server\share`; in `\\\\?\\C:` (escaped)
        // the `\\` after `?` is the long-path prefix's, not a server's.
        String.raw`(?<![\w\\:]|\\[?.])(\\\\\\\\|\\\\)((?:[?.]${SEP}UNC${SEP})?)([A-Za-z0-9][\w.$-]*)((?:${SEP}${SEGMENT})*)`,
        'g',
      ),
      replace: (_match: string, lead: string, long: string, host: string, rest: string) => {
        const separator = lead.length === 4 ? '\\\\' : '\\';
        const keptHost = /^wsl(?:\$|\.localhost)$/i.test(host) ? host : '<host>';
        const segments = rest.split(/\\\\|\\|\//).slice(1);
        const scrubbed = scrubSegments(segments, false, () => false);
        return `${lead}${long}${keptHost}${scrubbed.map((segment) => separator + segment).join('')}`;
      },
    },
    {
      name: 'path-windows',
      needs: ({ text }: TextFacts) =>
        text.includes(':\\') || (text.includes(':/') && /\b[A-Za-z]:\/(?!\/)/.test(text)),
      // After `\\?\` or `\\.\` too (long and device paths: `\\?\C:\Users\x`), not after other backslashes.
      pattern: new RegExp(
        String.raw`(?:(?<![\w\\/])|(?<=(?:^|[^\w\\])(?:\\\\|\\\\\\\\)[?.](?:\\|\\\\)))([A-Za-z]:)((?:${SEP}${SEGMENT})+|${SEP})`,
        'g',
      ),
      replace: (match: string, drive: string, rest: string) => {
        const separator = /^\\\\/.test(rest) ? '\\\\' : rest[0]!;
        const segments = rest.split(/\\\\|\\|\//).slice(1);
        const all = [drive, ...segments];
        let homeLength = 0;
        if (home && homeIsWindows && startsWithSegments(all, home, true)) homeLength = home.length - 1;
        else homeLength = windowsHomeLength(segments);
        if (homeLength === 0 && segments.length === 0) return match;
        const tail = scrubSegments(segments.slice(homeLength), false, () => false);
        const head = homeLength > 0 ? '<home>' : drive;
        return head + tail.map((segment) => separator + segment).join('');
      },
    },
    {
      name: 'path',
      needs: ({ text }: TextFacts) => text.includes('/') || text.includes('~'),
      pattern: new RegExp(
        String.raw`(?<![\w.~>/\\-])(?!(?<=:)//(?!/))(?:(~[A-Za-z_][\w.-]*|~|<home>|<path>)((?:/+${SEGMENT})*)|((?:/+${SEGMENT})+))(/?)`,
        'g',
      ),
      replace: (
        match: string,
        prefix: string | undefined,
        prefixed: string | undefined,
        absolute: string | undefined,
        trailingSlash: string,
      ) => {
        let head: string;
        let segments: string[];
        if (prefix !== undefined) {
          head = prefix === '~' || isMarker(prefix) ? prefix : '<home>';
          segments = (prefixed ?? '').split(/\/+/).slice(1);
        } else {
          const body = absolute!;
          const leading = /^\/+/.exec(body)![0];
          const all = body.slice(leading.length).split(/\/+/);
          let homeLength = 0;
          if (home && !homeIsWindows && startsWithSegments(all, home, false)) homeLength = home.length;
          else homeLength = genericHomeLength(all);
          if (homeLength > 0) {
            // `file:///Users/x` keeps its `file://`; an ordinary path starts at `<home>`.
            head = `${leading.slice(1)}<home>`;
            segments = all.slice(homeLength);
          } else {
            head = leading;
            segments = all;
            const scrubbed = scrubSegments(segments, false, () => false).join('/');
            const out = `${head}${scrubbed}${trailingSlash}`;
            return out === match ? match : out;
          }
        }
        const tail = scrubSegments(segments, false, () => false);
        const out = `${head}${tail.map((segment) => `/${segment}`).join('')}${trailingSlash}`;
        return out === match ? match : out;
      },
    },
  ];
  return rules.map(punctuationAware);
}

export function createAddressRules(): Rule[] {
  return [
    {
      name: 'mac-address',
      needs: (facts: TextFacts) =>
        facts.colons >= 5 || (facts.dashes >= 5 && /-[0-9a-fA-F]{2}-[0-9a-fA-F]{2}-/.test(facts.text)),
      pattern: /(?<![\w:-])(?:[0-9a-f]{2}([:-]))(?:[0-9a-f]{2}\1){4}[0-9a-f]{2}(?![\w:-])/gi,
      replace: '<mac>',
    },
    {
      name: 'ipv6',
      // Either a `::` or all eight groups (seven colons).
      needs: (facts: TextFacts) => facts.colons >= 7 || facts.text.includes('::'),
      pattern:
        /(?<![\w:.])(?:[0-9a-f]{0,4}:){2,7}(?:\d{1,3}(?:\.\d{1,3}){3}|[0-9a-f]{0,4})(?:%[\w.-]+)?(?![\w:]|\.\d)/gi,
      replace: (match: string) => {
        const address = match.replace(/%.*$/, '');
        if (!isIPv6(address)) return match;
        if (address === '::1' || address === '::') return match;
        return '<ip>';
      },
    },
    {
      name: 'ipv4',
      needs: /\d\.\d{1,3}\.\d/,
      pattern: /(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?!\w|\.\d)/g,
      replace: (match: string) => {
        if (match.split('.').some((octet) => Number(octet) > 255)) return match;
        return isLoopbackV4(match) || SHARED_IPV4.has(match) ? match : '<ip>';
      },
    },
  ];
}

/** A name known exactly (user or host), as a whole word, any case; never inside a marker. */
function exactNameRule(name: string, names: readonly string[], marker: string, boundary: string): Rule {
  const alternatives = [...new Set(names.map((n) => n.toLowerCase()))]
    .sort((a, b) => b.length - a.length)
    .map(escapeRegExp)
    .join('|');
  const lowerNames = [...new Set(names.map((n) => n.toLowerCase()))];
  return {
    name,
    // A case-insensitive pattern cannot use the engine's fast literal search: look first.
    needs: ({ lower }: TextFacts) => lowerNames.some((n) => lower.includes(n)),
    pattern: new RegExp(`(?<![<${boundary}])(?:${alternatives})(?![>${boundary}])`, 'gi'),
    replace: marker,
  };
}

export function createHostRules(identity: RuleIdentity, keepName: KeepName): Rule[] {
  const rules: Rule[] = [];
  const host = identity.hostName?.trim().toLowerCase().replace(/\.$/, '');
  if (host) {
    const names = [host, host.split('.')[0]!].filter(
      (name) => name.length >= 3 && !SHARED_HOST_NAMES.has(name) && !/^\d+$/.test(name),
    );
    if (names.length > 0) rules.push(exactNameRule('host-name', names, '<host>', String.raw`\w-`));
  }
  rules.push(
    punctuationAware({
      name: 'host-fqdn',
      // Checked on the current text: by now URLs and e-mail addresses, the usual hosts, are markers.
      needs: (_facts: TextFacts, current: string) => TLD_INSIDE.test(current),
      // A host name in text, maybe with a port and a path (`registry.acme.com/team/image:tag`).
      pattern:
        /(?<![\w.@/\\-])((?:[a-z0-9][a-z0-9-]*\.)+([a-z]{2,24}))(\.?)(?![\w-]|\.[a-z0-9])(:\d{1,5})?(\/[^\s?#"'<>`\\]*)?/gi,
      replace: (
        match: string,
        host: string,
        tld: string,
        dot: string,
        port: string | undefined,
        path: string | undefined,
      ) => {
        if (!HOST_TLDS.has(tld.toLowerCase())) return match;
        const out = `${isPublicHost(host) ? host : '<host>'}${dot}${port ?? ''}${path ? scrubUrlPath(path, keepName) : ''}`;
        return out === match ? match : out;
      },
    }),
  );
  return rules;
}

export function createUserRules(identity: RuleIdentity): Rule[] {
  const user = identity.userName?.trim();
  if (!user || user.length < 3 || SHARED_ACCOUNT_NAMES.has(user.toLowerCase())) return [];
  // Windows account names can carry a domain (`CORP\alice`): both halves identify.
  const names = user
    .split('\\')
    .filter((name) => name.length >= 3 && !SHARED_ACCOUNT_NAMES.has(name.toLowerCase()));
  return [exactNameRule('user-name', names, '<user>', 'A-Za-z0-9')];
}

export function createIdRules(): Rule[] {
  return [
    {
      name: 'uuid',
      needs: (facts: TextFacts) => facts.hasUuid,
      pattern: /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi,
      replace: (match: string) => (/^[0-]+$/.test(match) ? match : '<uuid>'),
    },
    {
      // One pass for both shapes of random secrets: hex of 32+ digits, and base64 of 40+ characters
      // that mixes lower case, upper case and digits (long words and enum names do not).
      name: 'long-hex-or-base64',
      // On the text as earlier rules left it: long runs in the input are mostly URLs and paths, markers by
      // now. (A probe of every 32nd character: as cheap on the input as here, so one check is enough.)
      needs: (_facts: TextFacts, current: string) => hasBase64Run(current, 32),
      pattern: /(?<![\w+/-])(?:0x)?[A-Za-z0-9+/_-]{32,}={0,2}(?![\w+/=-])/g,
      replace: (match: string) => {
        const body = match.replace(/^0x/i, '').replace(/=+$/, '');
        if (/^[0-9a-f]{32,}$/i.test(body)) return '<secret>';
        return body.length >= 40 && /[a-z]/.test(body) && /[A-Z]/.test(body) && /\d/.test(body)
          ? '<secret>'
          : match;
      },
    },
  ];
}
