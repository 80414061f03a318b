/**
 * Kubernetes names in the positions Telepresence's (and kubectl's, helm's) errors put them. A name is
 * recognised by its position, never by its look, so an ordinary English word after a keyword is kept
 * (see PROSE_WORDS) and everything else there is replaced by a typed marker.
 */
import { isMarker, type KeepName, KUBE_RESOURCE_MARKERS } from './_paths.js';
import type { Rule, TextFacts } from './_rule.js';
import { HOST_TLDS, PATH_WORDS, PROSE_WORDS, PUBLIC_HOSTS } from './_vocabulary.js';

/** Keyword (lower-cased, singular or plural) → the marker for the name that follows it. */
const KEYWORD_MARKERS: Readonly<Record<string, string>> = {
  context: '<context>',
  cluster: '<cluster>',
  user: '<user>',
  namespace: '<ns>',
  workload: '<workload>',
  intercept: '<intercept>',
  service: '<service>',
  pod: '<pod>',
  deployment: '<workload>',
  replicaset: '<workload>',
  statefulset: '<workload>',
  daemonset: '<workload>',
  job: '<workload>',
  cronjob: '<workload>',
  rollout: '<workload>',
  replicationcontroller: '<workload>',
  matching: '<workload>',
  configmap: '<name>',
  secret: '<name>',
  serviceaccount: '<name>',
  ingress: '<name>',
  persistentvolumeclaim: '<name>',
  lease: '<name>',
  endpoints: '<service>',
  release: '<release>',
  container: '<container>',
  node: '<node>',
  image: '<image>',
  name: '<name>',
  named: '<name>',
  spec: '<name>',
  agent: '<workload>',
};

function markerForKeyword(keyword: string): string {
  const lower = keyword.toLowerCase();
  return (
    KEYWORD_MARKERS[lower] ??
    KEYWORD_MARKERS[lower.replace(/(?:es|s)$/, '')] ??
    KEYWORD_MARKERS[lower.replace(/s$/, '')] ??
    '<name>'
  );
}

const QUOTED_KEYWORDS =
  'contexts?|clusters?|users?|namespaces?|workloads?|intercepts?|services?|pods?|deployments?|replicasets?|' +
  'statefulsets?|daemonsets?|jobs?|cronjobs?|rollouts?|replicationcontrollers?|configmaps?|secrets?|' +
  'serviceaccounts?|ingress(?:es)?|persistentvolumeclaims?|leases?|endpoints|release|containers?|nodes?|image|name|spec|' +
  'clusterroles?|clusterrolebindings?|roles?|rolebindings?|customresourcedefinitions?|networkpolic(?:y|ies)|' +
  'mutatingwebhookconfigurations?|validatingwebhookconfigurations?|horizontalpodautoscalers?|' +
  'poddisruptionbudgets?|persistentvolumes?|resourcequotas?|limitranges?|priorityclasses?|storageclasses?';

const UNQUOTED_KEYWORDS =
  'namespace|workload|intercept|service|matching|pod|deployment|statefulset|replicaset|daemonset|context|cluster|' +
  'release|agent|user|named|name';

/** Telepresence's InterceptError enum names that are followed by a name. */
const ERROR_CODE_MARKERS: Readonly<Record<string, string>> = {
  NO_ACCEPTABLE_WORKLOAD: '<workload>',
  NO_ACCEPTABLE_DEPLOYMENT: '<workload>',
  MISCONFIGURED_WORKLOAD: '<workload>',
  NOT_INTERCEPTABLE: '<workload>',
  NO_SUCH_SERVICE: '<service>',
  AMBIGUOUS_MATCH: '<workload>',
  NOT_FOUND: '<intercept>',
  ALREADY_EXISTS: '<intercept>',
  LOCAL_TARGET_IN_USE: '<intercept>',
};

const FLAG_MARKERS: Readonly<Record<string, string>> = {
  namespace: '<ns>',
  n: '<ns>',
  'mapped-namespaces': '<ns>',
  'manager-namespace': '<ns>',
  context: '<context>',
  cluster: '<cluster>',
  workload: '<workload>',
  'swap-deployment': '<workload>',
  deployment: '<workload>',
  'new-deployment': '<workload>',
  service: '<service>',
  name: '<name>',
  user: '<user>',
  as: '<user>',
  'as-group': '<user>',
  server: '<url-host>',
  kubeconfig: '<path>',
  mount: '<path>',
  'docker-mount': '<path>',
  'env-file': '<path>',
  'env-json': '<path>',
};

/** `a|bc` → `[aA]|[bB]c`: keywords in lower case or capitalised, without the slower case-insensitive flag. */
function capitalisable(alternatives: string): string {
  return alternatives.replace(
    /(^|\|)([a-z])/g,
    (_match, bar: string, first: string) => `${bar}[${first}${first.toUpperCase()}]`,
  );
}

const KUBE_NAME = '[A-Za-z0-9][\\w.-]{0,252}';
const POD_HASH = '[bcdfghjklmnpqrstvwxz2456789]';

/** Trailing sentence punctuation is not part of a name. */
function splitTrailing(name: string): [string, string] {
  const match = /[.-]+$/.exec(name);
  return match ? [name.slice(0, match.index), match[0]] : [name, ''];
}

/** Trailing punctuation after an unquoted value (`-n team-a:`, `--context prod,`). */
function splitPunctuation(value: string): [string, string] {
  const match = /[.,;:)\]]+$/.exec(value);
  return match ? [value.slice(0, match.index), match[0]] : [value, ''];
}

function isProse(word: string): boolean {
  return PROSE_WORDS.has(word.toLowerCase());
}

export function createKubeRules(keepName: KeepName): Rule[] {
  const keep = (name: string) => name === '' || isMarker(name) || keepName(name);
  return [
    {
      name: 'kube-arn',
      needs: 'arn:',
      pattern: /\barn:aws[\w-]*:[\w-]+:[\w-]*:\d{12}:[^\s"'`,;)]+/g,
      replace: '<arn>',
    },
    {
      name: 'kube-context',
      needs: 'gke_',
      pattern: /\bgke_[\w-]+_[\w-]+_[\w-]+/g,
      replace: '<context>',
    },
    {
      name: 'kube-service-account',
      needs: 'system:serviceaccount:',
      pattern: /\bsystem:serviceaccount:([a-z0-9][a-z0-9.-]*):([a-z0-9][a-z0-9.-]*)/g,
      replace: (_match: string, ns: string, account: string) =>
        `system:serviceaccount:${keep(ns) ? ns : '<ns>'}:${keep(account) ? account : '<name>'}`,
    },
    {
      // Telepresence's intercept id is `<session uuid>:<intercept name>`.
      name: 'kube-intercept-id',
      needs: (facts: TextFacts) => facts.hasUuid,
      pattern: /\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}:([a-z0-9][a-z0-9-]{0,62})/gi,
      replace: (_match: string, name: string) => `<uuid>:${keep(name) ? name : '<intercept>'}`,
    },
    {
      // Custom resources: `interceptors.getambassador.io "x"`, `widgets.example.com "x"`.
      name: 'kube-custom-resource',
      needs: /\.(?:io|com|dev|org|net|sh|cloud)\s+"/,
      pattern: /\b([a-z][a-z0-9-]*(?:\.[a-z0-9-]+)*\.(?:io|com|dev|org|net|sh|cloud))(\s+)"([^"\n]{1,253})"/g,
      replace: (match: string, resource: string, space: string, name: string) =>
        keep(name) ? match : `${resource}${space}"<name>"`,
    },
    {
      name: 'kube-quoted-name',
      needs: /["'`]/,
      pattern: new RegExp(
        `\\b(${capitalisable(QUOTED_KEYWORDS)})((?:\\.[a-z0-9-]+)+)?(\\s+)(["'\`])([^"'\`\\n]{1,253})\\4`,
        'g',
      ),
      replace: (
        match: string,
        keyword: string,
        group: string | undefined,
        space: string,
        quote: string,
        name: string,
      ) =>
        keep(name) ? match : `${keyword}${group ?? ''}${space}${quote}${markerForKeyword(keyword)}${quote}`,
    },
    {
      name: 'kube-error-code',
      needs: new RegExp(Object.keys(ERROR_CODE_MARKERS).join('|')),
      pattern: new RegExp(`\\b(${Object.keys(ERROR_CODE_MARKERS).join('|')})(:\\s*)(${KUBE_NAME})`, 'g'),
      replace: (match: string, code: string, separator: string, rawName: string) => {
        const [name, trailing] = splitTrailing(rawName);
        return keep(name) ? match : `${code}${separator}${ERROR_CODE_MARKERS[code]}${trailing}`;
      },
    },
    {
      name: 'kube-flag',
      needs: ({ text }: TextFacts) => text.includes('--') || text.includes('-n '),
      pattern:
        /(?<![\w-])(--(?:namespace|mapped-namespaces|manager-namespace|context|cluster|workload|swap-deployment|deployment|new-deployment|service|name|user|as|as-group|server|kubeconfig|mount|docker-mount|env-file|env-json)|-n)(=|[ \t]+)("[^"\n]*"|'[^'\n]*'|[^\s"'`]+)/g,
      replace: (match: string, flag: string, separator: string, rawValue: string) => {
        const [value, trailing] = /^["']/.test(rawValue) ? [rawValue, ''] : splitPunctuation(rawValue);
        const bare = value.replace(/^["']|["']$/g, '');
        if (keep(bare) || bare.startsWith('-') || bare.includes('<') || bare.includes('://')) return match;
        if (flag === '-n' && /^\d+$/.test(bare)) return match;
        // `--docker-mount must be used…`: after a space, an ordinary word is prose, not a value.
        if (separator !== '=' && isProse(bare)) return match;
        // An absolute path is left to the path rules, which keep its non-identifying shape.
        const marker = FLAG_MARKERS[flag.replace(/^-+/, '')]!;
        if (marker === '<path>' && /^(?:[/~]|[A-Za-z]:[\\/]|<home>)/.test(bare)) return match;
        if (marker === '<ns>' && bare.includes(',')) {
          const names = bare.split(',').map((name) => (keep(name) ? name : '<ns>'));
          return `${flag}${separator}${names.join(',')}${trailing}`;
        }
        return `${flag}${separator}${marker}${trailing}`;
      },
    },
    {
      name: 'kube-dns-name',
      needs: '.svc',
      pattern: /\b([a-z0-9][a-z0-9-]{0,62})\.([a-z0-9][a-z0-9-]{0,62})\.svc\b/gi,
      replace: (_match: string, name: string, ns: string) =>
        `${keep(name) ? name : '<service>'}.${keep(ns) ? ns : '<ns>'}.svc`,
    },
    {
      name: 'kube-dns-lookup',
      needs: 'lookup',
      // Labels may already be markers (`<service>.default`): the template pass redacts the rest.
      pattern: /\blookup(\s+)((?:<[a-z-]+>|[A-Za-z0-9])[\w.<>-]{0,252})/g,
      replace: (match: string, space: string, rawName: string) => {
        const [name, trailing] = splitTrailing(rawName);
        const lower = name.toLowerCase();
        if (keep(name) || PUBLIC_HOSTS.has(lower) || isProse(name)) return match;
        // `<name>.<ns>.svc…` belongs to the kube-dns-name rule.
        if (/\.svc(?:\.|$)/.test(lower)) return match;
        const labels = lower.split('.');
        let replacement: string;
        if (labels.length >= 3 || (labels.length === 2 && HOST_TLDS.has(labels[1]!))) {
          replacement = labels.every(isMarker) ? name : '<host>';
        } else if (labels.length === 2) {
          replacement = `${keep(labels[0]!) ? labels[0] : '<service>'}.${keep(labels[1]!) ? labels[1] : '<ns>'}`;
        } else {
          replacement = '<service>';
        }
        const out = `lookup${space}${replacement}${trailing}`;
        return out === match ? match : out;
      },
    },
    {
      name: 'kube-resource-path',
      // Plural resources end in `s/`; the singular ones are few.
      needs: ({ lower }: TextFacts) =>
        lower.includes('/') && (lower.includes('s/') || /(?:pod|deployment|service|set|job)\//.test(lower)),
      pattern:
        /\b(namespaces|pods|services|deployments|replicasets|statefulsets|daemonsets|jobs|cronjobs|nodes|configmaps|secrets|serviceaccounts|endpoints|ingresses|rollouts|pod|deployment|service|statefulset|replicaset|daemonset|job)\/([a-z0-9][a-z0-9.-]{0,252})/gi,
      replace: (match: string, resource: string, rawName: string) => {
        const [name, trailing] = splitTrailing(rawName);
        if (keep(name) || PATH_WORDS.has(name.toLowerCase())) return match;
        const lower = resource.toLowerCase();
        const marker = KUBE_RESOURCE_MARKERS[lower] ?? KUBE_RESOURCE_MARKERS[`${lower}s`] ?? '<name>';
        return `${resource}/${marker}${trailing}`;
      },
    },
    {
      // `preview domain for <workload>.<ns>`: the name follows a phrase, not a single keyword.
      name: 'kube-preview-target',
      needs: 'preview',
      pattern: new RegExp(`\\b([Pp]review (?:domain|URL|url)s? for)([ \\t]+)(${KUBE_NAME})`, 'g'),
      replace: (match: string, phrase: string, space: string, rawName: string) => {
        const [name, trailing] = splitTrailing(rawName.replace(/:$/, ''));
        const colon = rawName.endsWith(':') ? ':' : '';
        return keep(name) || isProse(name) ? match : `${phrase}${space}<workload>${trailing}${colon}`;
      },
    },
    {
      name: 'kube-name',
      pattern: new RegExp(
        `\\b(${capitalisable(UNQUOTED_KEYWORDS)})([ \\t]+)(?!(?:${UNQUOTED_KEYWORDS})(?![\\w.-]))(${KUBE_NAME})(?:([ \\t]+in[ \\t]+)(?!(?:${UNQUOTED_KEYWORDS})(?![\\w.-]))([a-z0-9][a-z0-9-]{0,62}))?`,
        'g',
      ),
      replace: (
        match: string,
        keyword: string,
        space: string,
        rawName: string,
        inWord: string | undefined,
        rawNs: string | undefined,
      ) => {
        const [name, trailing] = splitTrailing(rawName);
        const keptName = keep(name) || isProse(name) || /^\d+$/.test(name);
        let out = `${keyword}${space}${keptName ? name : markerForKeyword(keyword)}${trailing}`;
        if (inWord !== undefined && rawNs !== undefined) {
          const keptNs = keep(rawNs) || isProse(rawNs) || trailing !== '';
          out += `${inWord}${keptNs ? rawNs : '<ns>'}`;
        }
        return out === match ? match : out;
      },
    },
    {
      name: 'kube-pod-name',
      needs: new RegExp(`-${POD_HASH}{5}\\b`),
      pattern: new RegExp(
        `\\b[a-z0-9](?:[a-z0-9-]{0,200}[a-z0-9])?-${POD_HASH}{6,10}-${POD_HASH}{5}\\b`,
        'g',
      ),
      replace: '<pod>',
    },
  ];
}
