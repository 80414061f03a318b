import { CONTEXT_FIELD_DOCS } from '../wire.js';
import type { Catalog, TraitSpec } from './types.js';

const cell = (text: string) => text.replace(/\|/g, '\\|').replace(/\r?\n/g, ' ');

function describeType(spec: TraitSpec): string {
  switch (spec.type) {
    case 'boolean':
      return 'boolean';
    case 'integer':
      return `integer${spec.max !== undefined ? ` (${spec.min ?? 0}–${spec.max})` : ''}`;
    case 'number':
      return 'number';
    case 'duration':
      return `duration (${spec.unit === 's' ? 'seconds' : 'milliseconds'})`;
    case 'enum':
      return `one of ${spec.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'enumList':
      return `list of ${spec.values.map((v) => `\`${v}\``).join(', ')}`;
    case 'flagList':
      return 'list of flag names (values removed)';
    case 'error':
      return 'error text, scrubbed of names, paths, addresses and secrets';
    case 'string':
      return spec.hashed
        ? 'keyed hash (the key never leaves your machine)'
        : `text up to ${spec.maxLength} characters, scrubbed`;
  }
}

/**
 * The public "what we collect" page. Its first table has the same shape as Telepresence's TELEMETRY.md
 * (metric name, description); the sections after it list every trait and context field and how to opt out.
 */
export function catalogToMarkdown(catalog: Catalog): string {
  const input = catalog.input;
  const lines: string[] = ['# Telemetry', ''];
  lines.push(
    input.intro ??
      `${catalog.title} collects anonymous usage telemetry. It includes information on your operating system version, but no identifying information.`,
    '',
    'The following metrics are collected:',
    '',
    '| Metric Name | Description |',
    '| --- | --- |',
  );
  for (const [name, spec] of Object.entries(input.events))
    lines.push(`| \`${cell(name)}\` | ${cell(spec.description)} |`);

  lines.push('', '## Traits', '', 'Each metric carries only these values:', '');
  lines.push('| Metric Name | Trait | Type | Required | Description |', '| --- | --- | --- | --- | --- |');
  for (const [name, spec] of Object.entries(input.events)) {
    const traits = Object.entries(spec.traits ?? {});
    if (traits.length === 0) lines.push(`| \`${cell(name)}\` | — | | | |`);
    for (const [trait, t] of traits)
      lines.push(
        `| \`${cell(name)}\` | \`${trait}\` | ${cell(describeType(t))} | ${t.required ? 'yes' : 'no'} | ${cell(t.description ?? '')} |`,
      );
  }

  lines.push('', '## Sent with every metric', '', '| Field | What it is |', '| --- | --- |');
  for (const [field, doc] of CONTEXT_FIELD_DOCS) lines.push(`| \`${field}\` | ${cell(doc)} |`);
  const extra = Object.entries(input.extraContext?.keys ?? {});
  if (input.extraContext && extra.length > 0) {
    lines.push(
      '',
      `Extra context is read only from these environment variables; any other \`${input.extraContext.envPrefix}*\` variable is ignored:`,
      '',
    );
    for (const [key, t] of extra)
      lines.push(`- \`${input.extraContext.envPrefix}${key.toUpperCase()}\` (${describeType(t)})`);
  }
  lines.push(
    '',
    'Never sent: user or host names, IP addresses, file paths, cluster or workload names, MAC addresses, CPU model or memory size.',
    '',
    '## Turning it off',
    '',
    'Any one of these turns telemetry off; nothing is written or sent afterwards:',
    '',
  );
  for (const env of input.optOutEnv ?? []) lines.push(`- \`${env}=1\` (also \`true\`, \`yes\` or \`on\`)`);
  lines.push(
    '- `DO_NOT_TRACK=1`',
    '- `TELEMARK_DISABLED=1`',
    `- \`${catalog.app} telemetry disable\` (or the tool's own equivalent), stored in your user config`,
    '- a `.telemark.json` file with `{ "telemetry": false }` in the project directory or any parent',
    '- a machine-wide policy file (`/etc/telemark/policy.json`, or `TELEMARK_POLICY_FILE`) with `{ "telemetry": false }`',
    '',
    'Set `TELEMARK_DEBUG=1` to print exactly what would be sent, without sending anything.',
    '',
  );
  return lines.join('\n');
}
