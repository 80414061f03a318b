import type { FastifyInstance } from 'fastify';
import type { AppRegistry } from '../config/registry-types.js';
import type { Store } from '../store/types.js';

/** What the query API needs from the collector. */
export interface ApiDeps {
  readonly store: Store;
  readonly registry: AppRegistry;
  /** The admin token every `/api/v1` request must present as `Authorization: Bearer …`. */
  readonly adminToken: string;
}

/** Registers `/api/v1/*` (docs/api.md). Placeholder until the analytics issue lands. */
export async function registerApiRoutes(_app: FastifyInstance, _deps: ApiDeps): Promise<void> {}
