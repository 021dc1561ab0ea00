import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { jobBusContract } from './contract';
import { openSqliteBus } from './sqlite';

jobBusContract('sqlite', async () => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'bus-'));
  const file = path.join(dir, 'bus.db');
  let bus = openSqliteBus({ path: file });
  return {
    bus,
    reopen: async () => {
      await bus.close();
      bus = openSqliteBus({ path: file });
      return bus;
    },
    cleanup: async () => {
      await bus.close();
      fs.rmSync(dir, { recursive: true, force: true });
    },
  };
});
