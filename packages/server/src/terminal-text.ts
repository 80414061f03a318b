/**
 * Text from clients, printed to a terminal by the CLI (`quarantine list`, `query`). Event names, versions,
 * trait values and error samples are whatever a client sent: an escape sequence in them would drive the
 * terminal that shows them (clear the screen, forge an OSC 8 link), and a bidi control would reorder what
 * follows. Such characters are shown as their `\uXXXX` escapes. Internal.
 */

/** Line and bidi controls: a terminal acts on them as on control characters. */
const LINE_AND_BIDI = '\\u2028\\u2029\\u202a-\\u202e\\u2066-\\u2069';
/** What text must not show raw: control characters (C0, DEL, C1), line and bidi controls. */
const TEXT_UNSAFE = new RegExp(`[\\p{Cc}${LINE_AND_BIDI}]`, 'gu');
/** The same in JSON text, where `JSON.stringify` has escaped C0 already (and its own new lines are C0). */
const JSON_UNSAFE = new RegExp(`[\\u007f-\\u009f${LINE_AND_BIDI}]`, 'g');
/** A character as its `\uXXXX` escape. */
const asEscape = (c: string): string => `\\u${(c.codePointAt(0) as number).toString(16).padStart(4, '0')}`;

/** `text` with every character a terminal would act on shown as its `\uXXXX` escape. */
export const terminalText = (text: string): string => text.replace(TEXT_UNSAFE, asEscape);

/**
 * JSON for a terminal: what `JSON.stringify` leaves raw and a terminal would act on (DEL, C1 controls
 * such as CSI, line and bidi controls) escaped as `\u009b`: the same value to a JSON reader.
 */
export const terminalJson = (value: unknown): string =>
  JSON.stringify(value, null, 2).replace(JSON_UNSAFE, asEscape);
