import pg from 'pg';

/** A database of its own for one test file on the shared server; `drop` removes it, connections and all. */
export const createDatabase = async (serverUrl: string, name: string): Promise<Readonly<{ url: string; drop: () => Promise<void> }>> => {
  const admin = async (sql: string) => {
    const client = new pg.Client({ connectionString: serverUrl });
    await client.connect();
    try {
      await client.query(sql);
    } finally {
      await client.end();
    }
  };
  await admin(`CREATE DATABASE ${name}`);
  const url = new URL(serverUrl);
  url.pathname = `/${name}`;
  return { url: url.toString(), drop: () => admin(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`) };
};
