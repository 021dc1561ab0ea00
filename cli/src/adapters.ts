import path from 'node:path';
import type { Config } from '#platform/config';
import type { Logger } from '#platform/logger';
import type { EventStore } from '#platform/event-store/port';
import type { ReadStore } from '#platform/read-store/port';
import type { KeyVault } from '#platform/key-vault/port';
import type { LeaseStore } from '#platform/lease/port';
import type { JobBus } from '#platform/bus/port';
import type { ChainKeys } from '#platform/event-store/chain';
import { openSqliteEventStore } from '#platform/event-store/sqlite';
import { openSqliteReadStore } from '#platform/read-store/sqlite';
import { openSqliteKeyVault } from '#platform/key-vault/sqlite';
import { openSqliteLeaseStore } from '#platform/lease/sqlite';
import { openSqliteBus } from '#platform/bus/sqlite';
import { namespacedBus } from '#platform/bus/namespaced';
import { openPostgresEventStore } from '#platform/event-store/postgres';
import { openKurrentDbEventStore } from '#platform/event-store/kurrentdb';
import { openMongoReadStore } from '#platform/read-store/mongodb';
import { openMongoKeyVault } from '#platform/key-vault/mongodb';
import { openMongoLeaseStore } from '#platform/lease/mongodb';
import { openPostgresReadStore } from '#platform/read-store/postgres';
import { openPostgresKeyVault } from '#platform/key-vault/postgres';
import { openPostgresLeaseStore } from '#platform/lease/postgres';
import { openKafkaBus } from '#platform/bus/kafka';

export type Infrastructure = Readonly<{
  eventStore: EventStore;
  readStore: ReadStore;
  vault: KeyVault;
  bus: JobBus;
  /** Opened on demand: only the expiry role takes a lease. */
  openLeases: () => Promise<LeaseStore>;
  close: () => Promise<void>;
}>;

/**
 * Opens the adapters the configuration names, closing whatever opened if one fails.
 */
/** The SQLite files this configuration writes most (a checkpointer thread's work). */
export const sqliteFiles = (config: Config): string[] => {
  const a = config.adapters;
  const file = (name: string) => path.join(config.dataDir, name);
  return [
    ...(a.eventStore === 'sqlite' ? [file('events.db')] : []),
    ...(a.readStore === 'sqlite' ? [file('read.db')] : []),
    ...(a.bus === 'sqlite' ? [file('bus.db')] : []),
  ];
};

export const openInfrastructure = async (
  config: Config,
  logger: Logger,
  options: Readonly<{
    chainKeys?: ChainKeys | null;
    /** SQLite: this process's commits checkpoint the WAL (false: a checkpointer thread does; see startWalCheckpointer). */
    checkpoints?: boolean;
    /** PostgreSQL: this process serves no requests, its appends can wait (see openPostgresEventStore). */
    background?: boolean;
  }> = {},
): Promise<Infrastructure> => {
  const a = config.adapters;
  const file = (name: string) => path.join(config.dataDir, name);
  const opened: { close: () => Promise<void> }[] = [];
  try {
    let eventStore: EventStore;
    if (a.eventStore === 'postgres') {
      eventStore = await openPostgresEventStore({ connectionString: a.postgresUrl!, chainKeys: options.chainKeys ?? null, background: options.background ?? false });
    } else if (a.eventStore === 'eventstoredb') {
      eventStore = await openKurrentDbEventStore({ connectionString: a.eventStoreDbUrl!, chainKeys: options.chainKeys ?? null });
    } else {
      eventStore = openSqliteEventStore({ path: file('events.db'), chainKeys: options.chainKeys ?? null, checkpoints: options.checkpoints ?? true });
    }
    opened.push(eventStore);

    let readStore: ReadStore;
    let vault: KeyVault;
    let openLeases: () => Promise<LeaseStore>;
    if (a.readStore === 'mongodb') {
      readStore = await openMongoReadStore({ url: a.mongodbUrl!, database: a.mongodbDatabase });
      opened.push(readStore);
      vault = await openMongoKeyVault({ url: a.mongodbUrl!, database: `${a.mongodbDatabase}_keyvault` });
      opened.push(vault);
      openLeases = () => openMongoLeaseStore({ url: a.mongodbUrl!, database: a.mongodbDatabase });
    } else if (a.readStore === 'postgres') {
      // The vault in a schema apart from the read models (the event store has its own too).
      readStore = await openPostgresReadStore({ connectionString: a.postgresUrl!, schema: 'notify_read' });
      opened.push(readStore);
      vault = await openPostgresKeyVault({ connectionString: a.postgresUrl!, schema: 'notify_keyvault' });
      opened.push(vault);
      openLeases = () => openPostgresLeaseStore({ connectionString: a.postgresUrl!, schema: 'notify_read' });
    } else {
      readStore = openSqliteReadStore({ path: file('read.db'), checkpoints: options.checkpoints ?? true });
      opened.push(readStore);
      vault = openSqliteKeyVault({ path: file('keys.db') });
      opened.push(vault);
      openLeases = async () => openSqliteLeaseStore({ path: file('read.db') });
    }

    let bus: JobBus;
    if (a.bus === 'kafka') {
      bus = namespacedBus(await openKafkaBus({ brokers: [...a.kafkaBrokers], clientId: `notify-${process.pid}`, logger }), a.kafkaPrefix);
    } else {
      bus = openSqliteBus({ path: file('bus.db'), checkpoints: options.checkpoints ?? true });
    }
    opened.push(bus);

    return {
      eventStore,
      readStore,
      vault,
      bus,
      openLeases,
      close: async () => {
        await Promise.all(opened.map((o) => o.close()));
      },
    };
  } catch (e) {
    await Promise.allSettled(opened.map((o) => o.close()));
    throw e;
  }
};
