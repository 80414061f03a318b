/**
 * The one place tp creates its telemetry client, the way a maintainer integrates telemark: the
 * catalog (what may be collected) is Telepresence's; every command imports `telemetry` and calls
 * `report()` where something worth counting happens. The client never blocks exit and never prints
 * (outside `TELEMARK_DEBUG=1`); `TELEMARK_ENDPOINT` points it at another collector.
 */
import { createTelemetry } from 'telemark';
import { telepresence } from 'telemark/catalogs/telepresence';

export const VERSION = '2.20.2';

/** `telemark serve`'s default address, so `npm start` plus this CLI work together out of the box. */
const DEFAULT_ENDPOINT = 'http://127.0.0.1:8787';

export const telemetry = createTelemetry({
  catalog: telepresence,
  version: VERSION,
  endpoint: DEFAULT_ENDPOINT,
  mode: 'cli',
});
