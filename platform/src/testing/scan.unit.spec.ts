import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { scanFiles } from './scan';

const dirWith = (files: Record<string, Buffer>): string => {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'scan-'));
  for (const [name, bytes] of Object.entries(files)) {
    fs.mkdirSync(path.dirname(path.join(dir, name)), { recursive: true });
    fs.writeFileSync(path.join(dir, name), bytes);
  }
  return dir;
};

describe('scanFiles', () => {
  it('finds strings as UTF-8 and UTF-16LE, and buffers as raw bytes, in nested files', async () => {
    const key = randomBytes(40);
    const dir = dirWith({
      'a.db': Buffer.concat([randomBytes(100), Buffer.from('홍길동', 'utf8'), randomBytes(100)]),
      'sub/deeper/b.db-wal': Buffer.concat([randomBytes(10), Buffer.from('kim@example.com', 'utf16le')]),
      'c.db-shm': Buffer.concat([Buffer.from('x'), key]),
      'clean.db': randomBytes(1000),
    });
    expect(await scanFiles(dir, ['홍길동', 'kim@example.com', key, 'absent'])).toEqual([
      { file: 'a.db', needle: '홍길동' },
      { file: 'c.db-shm', needle: key.toString('hex') },
      { file: path.join('sub', 'deeper', 'b.db-wal'), needle: 'kim@example.com' },
    ]);
  });

  it('finds a needle that straddles two read chunks of a large file', async () => {
    const needle = 'straddling-needle-0123456789';
    const mib = 1 << 20;
    const bytes = Buffer.alloc(3 * mib, 0x61);
    Buffer.from(needle).copy(bytes, 2 * mib - 10);
    const dir = dirWith({ 'big.db': bytes });
    expect(await scanFiles(dir, [needle])).toEqual([{ file: 'big.db', needle }]);
    expect(await scanFiles(dir, ['not-there'])).toEqual([]);
  });

  it('refuses an empty needle, which would match everything', async () => {
    await expect(scanFiles(dirWith({ 'a': Buffer.from('x') }), [''])).rejects.toThrow(/empty/);
  });
});
