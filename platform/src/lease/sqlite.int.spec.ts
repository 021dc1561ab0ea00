import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { leaseStoreContract } from './contract';
import { openSqliteLeaseStore } from './sqlite';

leaseStoreContract('sqlite, two connections', async () => {
  const file = path.join(fs.mkdtempSync(path.join(os.tmpdir(), 'lease-')), 'leases.db');
  let t = 1_000_000;
  const now = () => t;
  const a = openSqliteLeaseStore({ path: file, now });
  const b = openSqliteLeaseStore({ path: file, now });
  return {
    a,
    b,
    advance: (ms) => {
      t += ms;
    },
    cleanup: async () => {
      await a.close();
      await b.close();
      fs.rmSync(path.dirname(file), { recursive: true, force: true });
    },
  };
});
