/**
 * How an erasure finds an install's quarantine entries, which have no install column: by its id as a
 * whole JSON string in the kept text (`"anonymousId":"<id>"`, `"install_id":"<id>"`), quotes included,
 * so that erasing `inst` leaves `inst-2` alone. Two forms: as JSON.stringify writes it (the kept form of
 * a parsed message) and unescaped (a body kept as sent), which differ only for ids with quotes,
 * backslashes or control characters.
 */
export function quotedInstallId(installId: string): readonly [string, string] {
  return [`"${installId}"`, JSON.stringify(installId)];
}
