import pg from 'pg';
import { MongoClient } from 'mongodb';
import type { Adapters, ApiSettings } from '#platform/config';
import type { RateLimitBackend } from './rate-limits';

/**
 * Where the rate-limit counters live: the cluster's PostgreSQL or MongoDB when it has one (every
 * replica counts together), else this process's memory (the embedded default is one process).
 */
export const openRateLimitBackend = async (
  settings: ApiSettings['rateLimits'],
  a: Adapters,
): Promise<Readonly<{ backend: RateLimitBackend; close: () => Promise<void> }>> => {
  const kind = settings.store !== 'auto'
    ? settings.store
    : a.postgresUrl && (a.eventStore === 'postgres' || a.readStore === 'postgres') ? 'postgres'
      : a.readStore === 'mongodb' && a.mongodbUrl ? 'mongodb' : 'memory';
  if (kind === 'postgres') {
    const pool = new pg.Pool({ connectionString: a.postgresUrl!, max: 4 });
    // An idle connection PostgreSQL dropped is an 'error' event: unhandled, it would end the process.
    pool.on('error', () => undefined);
    return { backend: { kind, pool }, close: () => pool.end() };
  }
  if (kind === 'mongodb') {
    const client = await new MongoClient(a.mongodbUrl!).connect();
    return { backend: { kind, client, database: a.mongodbDatabase }, close: () => client.close() };
  }
  return { backend: { kind: 'memory' }, close: async () => undefined };
};
