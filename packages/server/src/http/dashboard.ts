import type { FastifyInstance } from 'fastify';

/** Serves the built dashboard (`packages/dashboard/dist`) at `/`. Placeholder until the dashboard lands. */
export async function registerDashboard(_app: FastifyInstance): Promise<void> {}
